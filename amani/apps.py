from django.apps import AppConfig


class AmaniConfig(AppConfig):
    """The project package doubles as the app that owns API clients and keys."""

    name = "amani"
    verbose_name = "API access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the OpenAPI security scheme of HmacAuthentication with drf-spectacular.
        from amani import schema  # noqa: F401
