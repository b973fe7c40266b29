from django.urls import path

import amani.converters  # noqa: F401  (registers <uuid_any:>, which accepts upper-case UUIDs)
from events.api.balance_views import ProviderBalanceView, ReconciliationView, WalletBalanceView
from events.api.statement_views import WalletStatementView
from events.api.views import EventBatchView, EventIngestView, WalletEventListView

urlpatterns = [
    path("wallets/<uuid_any:wallet_id>/events/ingest", EventIngestView.as_view(), name="wallet-event-ingest"),
    path("wallets/<uuid_any:wallet_id>/events", WalletEventListView.as_view(), name="wallet-event-list"),
    path("events/batch", EventBatchView.as_view(), name="event-batch"),
    path("wallets/<uuid_any:wallet_id>/balance", WalletBalanceView.as_view(), name="wallet-balance"),
    path(
        "wallets/<uuid_any:wallet_id>/provider-balances",
        ProviderBalanceView.as_view(),
        name="wallet-provider-balances",
    ),
    path("wallets/<uuid_any:wallet_id>/reconciliation", ReconciliationView.as_view(), name="wallet-reconciliation"),
    path("wallets/<uuid_any:wallet_id>/statement", WalletStatementView.as_view(), name="wallet-statement"),
]
