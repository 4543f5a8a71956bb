from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "backups"
    verbose_name = "Backups and assurance"

    def ready(self) -> None:
        from backups import audit, receivers  # noqa: F401  # receivers connect the hooks

        audit.register_models()
