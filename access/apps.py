from django.apps import AppConfig


class AccessConfig(AppConfig):
    """Who may call the API: clients, their signing keys, nonces, HMAC authentication and scopes."""

    name = "access"
    verbose_name = "API access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the OpenAPI security scheme of HmacAuthentication with drf-spectacular.
        from access import schema  # noqa: F401
