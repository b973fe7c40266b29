"""Admin for API clients and keys. Every change goes through access.services (which audits).

A key's secret exists in plain text only in the response that issues it: the page is
rendered straight from the POST (no redirect, no message storage, `no-store`), so it is
never stored in a cookie or session, never logged and never shown again.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

from access.models import ApiClient, ApiKey, Scope
from access.services import (
    IssuedKey,
    api_client_create,
    api_client_update,
    api_key_create,
    api_key_expire,
    api_key_revoke,
)
from amani.actors import Actor


def staff_actor(request: HttpRequest) -> Actor:
    return Actor.staff(request.user.get_username(), getattr(request, "request_id", ""))


class ApiClientForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in Scope.values], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiClient
        fields = ["name", "scopes", "is_active"]


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["key_id", "created_at", "expires_at", "revoked_at", "last_used_at"]
    readonly_fields = ["key_id", "created_at", "revoked_at", "last_used_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # keys are issued with the "Issue a new key" button, which shows the secret once


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    form = ApiClientForm
    list_display = ["name", "scopes", "is_active", "active_keys", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "keys__key_id"]
    inlines = [ApiKeyInline]
    actions = ["issue_keys"]
    change_form_template = "admin/access/apiclient/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiClient]:
        now = timezone.now()
        usable = Q(keys__revoked_at__isnull=True) & (Q(keys__expires_at__isnull=True) | Q(keys__expires_at__gt=now))
        return super().get_queryset(request).annotate(active_key_count=Count("keys", filter=usable))

    @admin.display(description="active keys", ordering="active_key_count")
    def active_keys(self, obj: ApiClient) -> int:
        return obj.active_key_count

    def get_fields(self, request: HttpRequest, obj: ApiClient | None = None) -> list[str]:
        return ["name", "scopes", "is_active", "created_at"] if obj is not None else ["name", "scopes", "is_active"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiClient | None = None) -> list[str]:
        # The name is how callers and the audit trail know a client: fixed once created.
        return ["name", "created_at"] if obj is not None else []

    def get_inlines(self, request: HttpRequest, obj: ApiClient | None) -> list:
        return self.inlines if obj is not None else []  # the first key comes with the client

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the audit trail names clients; switch one off with is_active instead

    def save_model(self, request: HttpRequest, obj: ApiClient, form: forms.ModelForm, change: bool) -> None:
        actor = staff_actor(request)
        try:
            if change:
                api_client_update(client=obj, scopes=form.cleaned_data["scopes"], is_active=obj.is_active, actor=actor)
                return
            client, issued = api_client_create(name=obj.name, scopes=form.cleaned_data["scopes"], actor=actor)
        except ValidationError as exc:  # the form validated the same rules; a race lands here
            raise PermissionDenied("; ".join(exc.messages)) from None
        if not obj.is_active:
            client = api_client_update(client=client, scopes=client.scopes, is_active=obj.is_active, actor=actor)
        obj.pk, obj.created_at, obj.scopes = client.pk, client.created_at, client.scopes
        obj._state.adding, obj._state.db = False, client._state.db
        request._issued_keys = [issued]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Only expires_at is editable on a key; route the change through the audited service.
        actor = staff_actor(request)
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []  # read by the admin log
        for key_form in formset.forms:
            if key_form.instance.pk and "expires_at" in key_form.changed_data:
                api_key_expire(key=key_form.instance, expires_at=key_form.cleaned_data["expires_at"], actor=actor)
                formset.changed_objects.append((key_form.instance, ["expires_at"]))

    def response_add(self, request: HttpRequest, obj: ApiClient, post_url_continue: str | None = None) -> HttpResponse:
        issued = getattr(request, "_issued_keys", None)
        if not issued:
            return super().response_add(request, obj, post_url_continue)
        return self.issued_keys_response(request, [(obj, key) for key in issued])

    def issued_keys_response(self, request: HttpRequest, issued: list[tuple[ApiClient, IssuedKey]]) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Key issued: copy the secret now",
            "opts": self.model._meta,
            "issued": [
                {"client": client, "key_id": key.key_id, "secret": key.secret, "client_url": self.client_url(client)}
                for client, key in issued
            ],
        }
        response = TemplateResponse(request, "admin/access/apiclient/key_issued.html", context)
        add_never_cache_headers(response)
        response["Cache-Control"] += ", no-store"
        return response

    def client_url(self, client: ApiClient) -> str:
        return reverse(f"{self.admin_site.name}:access_apiclient_change", args=[client.pk])

    @admin.action(description="Issue a new key (secret shown once)", permissions=["change"])
    def issue_keys(self, request: HttpRequest, queryset: QuerySet[ApiClient]) -> HttpResponse:
        actor = staff_actor(request)
        issued = [(client, api_key_create(client=client, actor=actor)) for client in queryset]
        return self.issued_keys_response(request, issued)

    def get_urls(self) -> list:
        info = self.model._meta.app_label, self.model._meta.model_name
        view = self.admin_site.admin_view(require_POST(self.issue_key_view))
        return [path("<path:object_id>/issue-key/", view, name="{}_{}_issue_key".format(*info)), *super().get_urls()]

    def issue_key_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        client = self.get_object(request, unquote(object_id))  # None for an id that is not one (abc)
        if client is None:
            raise Http404("No such API client.")
        if not self.has_change_permission(request, client):
            raise PermissionDenied
        return self.issued_keys_response(request, [(client, api_key_create(client=client, actor=staff_actor(request)))])


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["expires_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["key_id", "client", "status", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["client", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["client"]
    search_fields = ["key_id", "client__name"]
    fields = ["key_id", "client", "created_at", "expires_at", "revoked_at", "last_used_at"]
    readonly_fields = ["key_id", "client", "created_at", "revoked_at", "last_used_at"]
    actions = ["revoke_keys"]
    change_form_template = "admin/access/apikey/change_form.html"

    def get_urls(self) -> list:
        info = self.model._meta.app_label, self.model._meta.model_name
        view = self.admin_site.admin_view(require_POST(self.revoke_view))
        return [path("<path:object_id>/revoke/", view, name="{}_{}_revoke".format(*info)), *super().get_urls()]

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        key = self.get_object(request, unquote(object_id))  # None for an id that is not one (abc)
        if key is None:
            raise Http404("No such API key.")
        if not self.has_change_permission(request, key):
            raise PermissionDenied
        if key.revoked_at is None:
            api_key_revoke(key=key, actor=staff_actor(request))
            self.message_user(request, f"Revoked key {key.key_id}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:access_apikey_change", args=[key.pk]))

    @admin.display(description="status")
    def status(self, obj: ApiKey) -> str:
        if obj.revoked_at is not None:
            return "revoked"
        return "active" if obj.is_usable() else "expired"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # issued from the client's page, which shows the secret once

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the audit trail and last use stay readable

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool) -> None:
        api_key_expire(key=obj, expires_at=form.cleaned_data["expires_at"], actor=staff_actor(request))

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> HttpResponseRedirect | None:
        actor = staff_actor(request)
        keys = list(queryset.select_related("client").filter(revoked_at__isnull=True))
        for key in keys:
            api_key_revoke(key=key, actor=actor)
        self.message_user(request, f"Revoked {len(keys)} key(s).", messages.SUCCESS)
        return None
