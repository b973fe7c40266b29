from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without blocking wallet writes (registrations and backfills go on during the deploy).
    atomic = False

    dependencies = [
        ("wallets", "0003_inactive_index"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="wallet",
            index=models.Index(fields=["provider", "provider_customer_id"], name="ix_wallet_provider_customer"),
        ),
    ]
