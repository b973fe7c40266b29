from django.apps import AppConfig


class WalletsConfig(AppConfig):
    name = "wallets"
    verbose_name = "Wallet registry"
    default_auto_field = "django.db.models.BigAutoField"
