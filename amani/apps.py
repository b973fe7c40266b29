from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AmaniConfig(AppConfig):
    """The project package doubles as the app that owns API clients and keys."""

    name = "amani"
    verbose_name = "API access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the OpenAPI security scheme of HmacAuthentication with drf-spectacular.
        from amani import schema  # noqa: F401
        from amani.database_roles import app_role_after_migrate

        post_migrate.connect(app_role_after_migrate, sender=self)
