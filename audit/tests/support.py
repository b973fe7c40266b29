"""Test helpers shared by the wallets and audit admin tests."""

from importlib import import_module
from types import SimpleNamespace

from django.apps import apps
from django.contrib.auth.models import Group, User
from django.db import connection

from amani.support_group import GROUP, support_permissions_grant

# The migrations that grant the Support group the audit, wallets and events view permissions.
SUPPORT_MIGRATIONS = (
    "audit.migrations.0004_support_group",
    "wallets.migrations.0005_support_group",
    "events.migrations.0003_support_group",
)


def support_group() -> Group:
    """The migrations' Support group; re-created when a transactional test's flush removed it."""
    if not Group.objects.filter(name=GROUP).exists():
        for migration in SUPPORT_MIGRATIONS:
            permissions = import_module(migration).VIEW_PERMISSIONS
            support_permissions_grant(apps, SimpleNamespace(connection=connection), permissions=permissions)
    return Group.objects.get(name=GROUP)


def staff_user(username: str, *, support: bool = True, permissions: tuple[str, ...] = ()) -> User:
    """A staff user, in the Support group unless told otherwise, with extra `app_label.codename` permissions."""
    from django.contrib.auth.models import Permission

    user = User.objects.create_user(username=username, password="unused-password", is_staff=True)
    if support:
        user.groups.add(support_group())
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user
