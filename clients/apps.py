from django.apps import AppConfig


class ClientsConfig(AppConfig):
    name = "clients"
    verbose_name = "Clients and inventory"

    def ready(self) -> None:
        from clients import audit

        audit.register_models()
