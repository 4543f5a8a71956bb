from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "backups"
    verbose_name = "Backups and assurance"

    def ready(self) -> None:
        from backups import receivers  # noqa: F401  # connects the inventory hooks
