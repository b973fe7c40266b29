"""Support staff see webhook deliveries (the `invalid` and `unmatched` ones are theirs to follow up)."""

from django.db import migrations

from amani.support_group import support_permissions_operation

VIEW_PERMISSIONS = [("webhooks", "view_webhookdelivery")]


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_initial"),
        ("audit", "0004_support_group"),
    ]

    operations = [support_permissions_operation(VIEW_PERMISSIONS)]
