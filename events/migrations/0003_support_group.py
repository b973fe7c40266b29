"""Support staff see events and provider balance reports (granted by audit.0004 before issue 16:
each app grants its own)."""

from django.db import migrations

from amani.support_group import support_permissions_operation

VIEW_PERMISSIONS = [("events", "view_walletevent"), ("events", "view_providerbalancereport")]


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0002_console_indexes"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [support_permissions_operation(VIEW_PERMISSIONS)]
