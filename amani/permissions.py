"""Scope checks: each API view names the scope each HTTP method needs."""

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from amani.api.errors import InsufficientScope


class HasScope(BasePermission):
    """Grant when the authenticated client holds `view.required_scopes[method]`."""

    def has_permission(self, request: Request, view) -> bool:
        if request.auth is None:
            return False  # DRF turns this into 401 missing_credentials
        required = view.required_scopes.get(request.method)
        if required is None or required not in request.user.scopes:
            raise InsufficientScope()
        return True
