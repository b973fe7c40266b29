"""The "Support" group: staff who look and never change. Each app's migration grants it
the view permissions of that app's own models, so no app's migration names another's."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from django.db import migrations

GROUP = "Support"


def support_permissions_grant(apps: Any, schema_editor: Any, *, permissions: Sequence[tuple[str, str]]) -> None:
    """Add `(app_label, codename)` permissions to the group, creating both as needed (RunPython)."""
    # Permissions are normally created by post_migrate, after every migration has run;
    # create them now so the group can hold them on a fresh database.
    from django.contrib.auth.management import create_permissions

    using = schema_editor.connection.alias
    for app_label in sorted({app_label for app_label, _ in permissions}):
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
    for app_label, codename in permissions:
        group.permissions.add(Permission.objects.using(using).get(content_type__app_label=app_label, codename=codename))


def support_permissions_revoke(apps: Any, schema_editor: Any, *, permissions: Sequence[tuple[str, str]]) -> None:
    """Take `(app_label, codename)` permissions away from the group (the reverse of a grant)."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    using = schema_editor.connection.alias
    for group in Group.objects.using(using).filter(name=GROUP):
        for app_label, codename in permissions:
            group.permissions.remove(
                *Permission.objects.using(using).filter(content_type__app_label=app_label, codename=codename)
            )


def support_permissions_operation(permissions: Sequence[tuple[str, str]]) -> migrations.RunPython:
    """The migration operation that grants the group `permissions` (and takes them back when reversed)."""
    return migrations.RunPython(
        partial(support_permissions_grant, permissions=permissions),
        partial(support_permissions_revoke, permissions=permissions),
        elidable=False,
    )
