from django.urls import path

from wallets.api.views import WalletCollectionView, WalletDetailView

urlpatterns = [
    path("wallets", WalletCollectionView.as_view(), name="wallet-list"),
    # <uuid:> keeps a path id that is not a UUID out of the view: the catch-all answers 404.
    path("wallets/<uuid:wallet_id>", WalletDetailView.as_view(), name="wallet-detail"),
]
