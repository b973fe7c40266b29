from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0003_inactive_index"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="wallet",
            index=models.Index(fields=["provider", "provider_customer_id"], name="ix_wallet_provider_customer"),
        ),
    ]
