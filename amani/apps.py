from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AmaniConfig(AppConfig):
    """The project package: settings, root URLs and the plumbing every app shares; no models."""

    name = "amani"
    verbose_name = "Amani"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from amani.database_roles import app_role_after_migrate

        post_migrate.connect(app_role_after_migrate, sender=self)
