"""The "Support" group: view-only access to wallets, events and the audit trail."""

from django.db import migrations

GROUP = "Support"
VIEW_PERMISSIONS = [
    ("wallets", "view_wallet"),
    ("events", "view_walletevent"),
    ("events", "view_providerbalancereport"),
    ("audit", "view_auditrecord"),
]


def create_support_group(apps, schema_editor):
    # Permissions are normally created by post_migrate, after every migration has run;
    # create them now so the group can hold them on a fresh database.
    from django.contrib.auth.management import create_permissions

    using = schema_editor.connection.alias
    for app_label in {app_label for app_label, _ in VIEW_PERMISSIONS}:
        app_config = apps.get_app_config(app_label)
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True  # None on migration state's app configs
        try:
            create_permissions(app_config, apps=apps, verbosity=0, using=using)
        finally:
            app_config.models_module = models_module

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(using).get_or_create(name=GROUP)
    for app_label, codename in VIEW_PERMISSIONS:
        permission = Permission.objects.using(using).get(content_type__app_label=app_label, codename=codename)
        group.permissions.add(permission)


def delete_support_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_append_only_trigger"),
        ("wallets", "0002_support_search_and_status_permission"),
        ("events", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_support_group, delete_support_group, elidable=False),
    ]
