from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    name = "lifecycle"
    verbose_name = "Obligations, deletions and evidence"

    def ready(self) -> None:
        from lifecycle import (
            receivers,  # noqa: F401  # connects the access-log hooks
            selfbackup,
        )

        selfbackup.register()
