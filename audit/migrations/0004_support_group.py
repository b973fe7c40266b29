"""The "Support" group: view-only access to the audit trail.

Until issue 16 this migration also granted the wallets and events view permissions, and
depended on their migrations; those grants moved to wallets.0005 and events.0003 (each
app grants its own), which a database migrated before runs as harmless repeats.
"""

from django.db import migrations

from amani.support_group import GROUP, support_permissions_grant

VIEW_PERMISSIONS = [("audit", "view_auditrecord")]


def create_support_group(apps, schema_editor):
    support_permissions_grant(apps, schema_editor, permissions=VIEW_PERMISSIONS)


def delete_support_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_append_only_trigger"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_support_group, delete_support_group, elidable=False),
    ]
