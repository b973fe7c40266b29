from django.urls import path

import amani.converters  # noqa: F401  (registers <uuid_any:>, which accepts upper-case UUIDs)
from events.api.views import EventBatchView, EventIngestView, WalletEventListView

urlpatterns = [
    path("wallets/<uuid_any:wallet_id>/events/ingest", EventIngestView.as_view(), name="wallet-event-ingest"),
    path("wallets/<uuid_any:wallet_id>/events", WalletEventListView.as_view(), name="wallet-event-list"),
    path("events/batch", EventBatchView.as_view(), name="event-batch"),
]

# Balances, provider balance reports and reconciliation (events/api/balance_views.py).
from django.urls import path as _path  # noqa: E402

from events.api import balance_views  # noqa: E402

urlpatterns += [
    _path("wallets/<uuid_any:wallet_id>/balance", balance_views.WalletBalanceView.as_view(), name="wallet-balance"),
    _path(
        "wallets/<uuid_any:wallet_id>/provider-balances",
        balance_views.ProviderBalanceView.as_view(),
        name="wallet-provider-balances",
    ),
    _path(
        "wallets/<uuid_any:wallet_id>/reconciliation",
        balance_views.ReconciliationView.as_view(),
        name="wallet-reconciliation",
    ),
]

# The statement (events/api/statement_views.py).
from events.api.statement_views import WalletStatementView  # noqa: E402

urlpatterns += [
    _path("wallets/<uuid_any:wallet_id>/statement", WalletStatementView.as_view(), name="wallet-statement"),
]
