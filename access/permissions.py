"""Scope checks: each API view names the scope each HTTP method needs."""

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from amani.api.errors import InsufficientScope


class HasScope(BasePermission):
    """Grant when the authenticated client holds `view.required_scopes[method]`.

    HEAD needs GET's scope. A method the view does not handle is let through, so
    that the caller learns `405 method_not_allowed` rather than a misleading 403.
    """

    def has_permission(self, request: Request, view) -> bool:
        if request.auth is None:
            return False  # DRF turns this into 401 missing_credentials
        method = request.method.lower()
        if method not in view.http_method_names or not hasattr(view, method):
            return True
        required = view.required_scopes.get("GET" if request.method == "HEAD" else request.method)
        if required is None or required not in request.user.scopes:
            raise InsufficientScope()
        return True
