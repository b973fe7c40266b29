from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Provider webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The wallet console lives in events, below this app: it learns of deliveries from here.
        from events.console import timeline_source_add
        from webhooks.console import DELIVERY_SOURCE

        timeline_source_add(DELIVERY_SOURCE)
