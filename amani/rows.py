"""Model instances from rows of hand-written SQL, for the few per-request hot paths."""

from __future__ import annotations

from typing import TypeVar

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

M = TypeVar("M", bound=Model)


def model_from_row(model: type[M], values: tuple, connection: BaseDatabaseWrapper) -> M:
    """An instance of `model` from `values` in `model._meta.concrete_fields` order.

    Applies each field's from_db_value (JSON text to Python) as the ORM would; the
    instance is an ordinary one, loaded from `connection`'s alias.
    """
    fields = model._meta.concrete_fields
    converted = [
        field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
        for field, value in zip(fields, values, strict=True)
    ]
    return model.from_db(connection.alias, [field.attname for field in fields], converted)
