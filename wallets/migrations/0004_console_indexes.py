from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0003_inactive_index"),
    ]

    operations = [
        # The support console searches by provider customer id alone; provider webhooks look it up
        # together with the provider: one index, customer id first, serves both.
        migrations.AddIndex(
            model_name="wallet",
            index=models.Index(fields=["provider_customer_id", "provider"], name="ix_wallet_provider_customer"),
        ),
    ]
