"""Support staff see webhook deliveries (the `invalid` and `unmatched` ones are theirs to follow up)."""

from django.db import migrations

GROUP = "Support"
PERMISSION = ("webhooks", "view_webhookdelivery")


def grant(apps, schema_editor):
    # Permissions are normally created by post_migrate, after every migration has run.
    from django.contrib.auth.management import create_permissions

    using = schema_editor.connection.alias
    app_config = apps.get_app_config("webhooks")
    models_module = getattr(app_config, "models_module", None)
    app_config.models_module = models_module or True
    try:
        create_permissions(app_config, apps=apps, verbosity=0, using=using)
    finally:
        app_config.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(using).get_or_create(name=GROUP)
    app_label, codename = PERMISSION
    group.permissions.add(
        Permission.objects.using(using).get(content_type__app_label=app_label, codename=codename)
    )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    using = schema_editor.connection.alias
    app_label, codename = PERMISSION
    for group in Group.objects.using(using).filter(name=GROUP):
        group.permissions.remove(*Permission.objects.using(using).filter(content_type__app_label=app_label, codename=codename))


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_initial"),
        ("audit", "0004_support_group"),
    ]

    operations = [migrations.RunPython(grant, revoke, elidable=False)]
