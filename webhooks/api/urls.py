from django.urls import path

from webhooks.api.views import WebhookView

urlpatterns = [
    path("webhooks/<str:provider>", WebhookView.as_view(), name="webhook-receive"),
]
