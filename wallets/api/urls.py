from django.urls import path

import amani.converters  # noqa: F401  (registers <uuid_any:>)
from wallets.api.views import WalletCollectionView, WalletDetailView

urlpatterns = [
    path("wallets", WalletCollectionView.as_view(), name="wallet-list"),
    # <uuid_any:> keeps a path id that is not a UUID out of the view (the catch-all answers 404)
    # and, unlike <uuid:>, accepts upper-case hex digits.
    path("wallets/<uuid_any:wallet_id>", WalletDetailView.as_view(), name="wallet-detail"),
]
