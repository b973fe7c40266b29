"""API clients (callers), their signing keys, and the shared nonce store."""

from django.db import models
from django.utils import timezone


class Scope(models.TextChoices):
    WALLETS_READ = "wallets:read"
    WALLETS_WRITE = "wallets:write"
    EVENTS_READ = "events:read"
    EVENTS_WRITE = "events:write"


class ApiClient(models.Model):
    """A calling backend service. Its scopes bound what any of its keys may do."""

    name = models.CharField(max_length=100, unique=True)
    scopes = models.JSONField(default=list, help_text="Subset of: " + ", ".join(Scope.values))
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "amani_apiclient"  # the table of the days when amani held these models
        ordering = ["name"]
        verbose_name = "API client"

    def __str__(self) -> str:
        return self.name

    # DRF's request.user is the client: an authenticated principal, never a Django user.
    is_authenticated = True


class ApiKey(models.Model):
    """One signing key of a client. Several may be active at once, for rotation."""

    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="keys")
    key_id = models.CharField(max_length=64, unique=True, editable=False)
    # Fernet token of the shared secret (access.services.secret_encrypt); never the plain secret.
    secret_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "amani_apikey"
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return self.key_id

    def is_usable(self, *, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class ApiNonce(models.Model):
    """Nonces seen within the clock-skew window, shared by every server process.

    The unique constraint is the replay check: a second INSERT of the same
    (key_id, nonce) conflicts. Rows older than the window are pruned.
    """

    key_id = models.CharField(max_length=64)
    nonce = models.CharField(max_length=64)
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "amani_apinonce"
        constraints = [models.UniqueConstraint(fields=["key_id", "nonce"], name="uq_apinonce_key_nonce")]

    def __str__(self) -> str:
        return f"{self.key_id}:{self.nonce}"
