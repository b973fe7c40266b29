"""Support staff see webhook deliveries (the `invalid` and `unmatched` ones are theirs to follow up)."""

from django.db import migrations

from amani.support_group import support_permissions_grant, support_permissions_revoke

VIEW_PERMISSIONS = [("webhooks", "view_webhookdelivery")]


def grant(apps, schema_editor):
    support_permissions_grant(apps, schema_editor, VIEW_PERMISSIONS)


def revoke(apps, schema_editor):
    support_permissions_revoke(apps, schema_editor, VIEW_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_initial"),
        ("audit", "0004_support_group"),
    ]

    operations = [migrations.RunPython(grant, revoke, elidable=False)]
