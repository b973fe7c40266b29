"""Support staff see events and provider balance reports (granted by audit.0004 before issue 16:
each app grants its own)."""

from django.db import migrations

from amani.support_group import support_permissions_grant, support_permissions_revoke

VIEW_PERMISSIONS = [("events", "view_walletevent"), ("events", "view_providerbalancereport")]


def grant(apps, schema_editor):
    support_permissions_grant(apps, schema_editor, VIEW_PERMISSIONS)


def revoke(apps, schema_editor):
    support_permissions_revoke(apps, schema_editor, VIEW_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0002_console_indexes"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke, elidable=False)]
