from django.apps import AppConfig


class HistoryConfig(AppConfig):
    name = "history"
    verbose_name = "Tamper-evident history"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from history import metrics  # noqa: F401  (registers the seal-lag gauges for /metrics)
