"""Settings, read once from the environment (django-environ).

`DATABASE_URL`, `SECRET_KEY`, `DEBUG` and `ALLOWED_HOSTS` are enough for production;
every other setting has a safe default. Nothing outside this package reads `os.environ`.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
            "(at least 50 random characters) or run with DEBUG=true for local development."
        )
    SECRET_KEY = "insecure-development-only-key-never-use-in-production-0123456789"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "amani.apps.AmaniConfig",
    "access.apps.AccessConfig",
    "wallets.apps.WalletsConfig",
    "events.apps.EventsConfig",
    "audit.apps.AuditConfig",
    "webhooks.apps.WebhooksConfig",
    "history.apps.HistoryConfig",
]

MIDDLEWARE = [
    "amani.middleware.RequestIdMiddleware",
    "amani.logging.AccessLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "amani.middleware.BodySizeLimitMiddleware",
    "amani.middleware.AdminNulCharacterMiddleware",
    "amani.middleware.ApiExceptionMiddleware",
    # Sessions, auth and messages serve the admin; these subclasses skip /api/ (amani.middleware).
    "amani.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "amani.middleware.AuthenticationMiddleware",
    "amani.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "amani.urls"
WSGI_APPLICATION = "amani.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# PostgreSQL, the only database. `make run` sets DATABASE_URL to the embedded server it
# starts (scripts/run_server.py) unless it is set already; the default is a local server.
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/amani"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# No `SELECT 1` health check before each request's first query (a round trip per request,
# PROFILE.md). A connection that died while idle is noticed by the first statement of a signed
# request, the API key lookup, which reconnects once and runs again (amani.db); elsewhere the
# request fails once with 503 and Django drops the broken connection. DATABASE_HEALTH_CHECKS=true
# turns Django's check back on.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_HEALTH_CHECKS", default=False)
# Behind PgBouncer in transaction pooling mode a server-side cursor cannot outlive its
# transaction (docs/scaling.md).
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool("DATABASE_DISABLE_SERVER_SIDE_CURSORS", default=False)
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must be a postgres:// URL: PostgreSQL is the only database.")
# The write path's statements bind server-side and are prepared once per connection (amani.db).
# Behind PgBouncer older than 1.21, or without `max_prepared_statements`, in transaction
# pooling, set DATABASE_PREPARED_STATEMENTS=false: they then still bind server-side, unprepared
# (docs/scaling.md).
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)


def generic_plans(database: dict) -> None:
    """Plan the prepared statements once per connection (plan_cache_mode=force_generic_plan).

    Only the write path's statements are prepared (Django binds the rest client-side), and
    PostgreSQL's default (auto) kept planning the single-ingest statement afresh every time:
    its custom plans fold the NULL dedup keys away and always looked cheaper than the generic
    plan, ~0.6 ms of PostgreSQL CPU per request (docs/benchmarks.md). A startup option, so no
    round trip; PgBouncer drops it (ignore_startup_parameters): there,
    `ALTER ROLE … SET plan_cache_mode` (docs/scaling.md).
    """
    if DATABASE_PREPARED_STATEMENTS:
        options = database.setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c plan_cache_mode=force_generic_plan".strip()


generic_plans(DATABASES["default"])
# Listing and balance reads may go to a streaming replica (amani.routers, docs/scaling.md).
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL)
    DATABASES["replica"]["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = DATABASES["default"]["CONN_HEALTH_CHECKS"]
    # Under test, the replica is the test database itself (no second database is created).
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["amani.routers.ReplicaRouter"]

# The least-privilege role the service connects as (amani.database_roles, docs/security.md):
# when set, every `migrate` (run as the tables' owner) re-applies its privileges, so a new
# table is never left without them. Empty: run `manage.py create_app_role NAME` by hand.
DATABASE_APP_ROLE = env.str("DATABASE_APP_ROLE", default="")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the apps' static folders when collectstatic has not run (make run).
WHITENOISE_USE_FINDERS = True

# Request bodies: 1 MiB, 16 MiB on the batch endpoint (BodySizeLimitMiddleware answers 413).
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
API_MAX_BATCH_BODY_BYTES = env.int("API_MAX_BATCH_BODY_BYTES", default=16 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BATCH_BODY_BYTES
# A body must arrive within this many seconds in all, else 408: a stalled or trickling client
# holds one gunicorn thread that long at most (docs/security.md, slow clients).
API_BODY_READ_TIMEOUT_SECONDS = env.float("API_BODY_READ_TIMEOUT_SECONDS", default=10.0)

# Cache: a shared Redis when CACHE_URL (or REDIS_URL) is set, so the per-key throttle
# counts across every worker; local memory otherwise. Never required (API.md).
_cache_url = env.str("CACHE_URL", default="") or env.str("REDIS_URL", default="")
CACHES = {
    "default": env.cache_url_config(_cache_url)
    if _cache_url
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # A slow or dead Redis must not stall requests: the throttle fails open (access.throttling).
    CACHES["default"].setdefault("OPTIONS", {}).update(socket_connect_timeout=0.25, socket_timeout=0.25)

# Throttling per API key ("N/s|m|h|d"; "off" disables). Callers burst: by default no key
# is throttled below 50,000 requests a minute (API.md).
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="100000/min")

# Prometheus multiprocess mode (several gunicorn workers): set by gunicorn.conf.py.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")

# HMAC request signing.
HMAC_CLOCK_SKEW_SECONDS = env.int("HMAC_CLOCK_SKEW_SECONDS", default=300)
# Secrets of API keys are encrypted at rest with Fernet; the key is derived from
# SECRET_KEY unless API_SECRET_ENCRYPTION_KEY (a Fernet key) is set.
API_SECRET_ENCRYPTION_KEY = env.str("API_SECRET_ENCRYPTION_KEY", default="")

# Provider webhooks (API.md "Provider webhooks"): comma-separated secrets, several during a
# rotation; a provider without one is off (404). Never logged.
PAYSTACK_SECRET_KEY = env.list("PAYSTACK_SECRET_KEY", default=[])
FLUTTERWAVE_SECRET_HASH = env.list("FLUTTERWAVE_SECRET_HASH", default=[])
FINCRA_WEBHOOK_KEY = env.list("FINCRA_WEBHOOK_KEY", default=[])

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["access.authentication.HmacAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["access.permissions.HasScope"],
    "DEFAULT_PARSER_CLASSES": ["amani.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "amani.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["access.throttling.ApiKeyRateThrottle"],
    "COERCE_DECIMAL_TO_STRING": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Amani wallet service",
    "DESCRIPTION": "Wallet registry, transaction events, balances and reconciliation.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Security. TLS terminates at the load balancer, which also redirects plain HTTP:
# an HTTP→HTTPS redirect here would turn signed POSTs into bodiless GETs, so
# security.W008 is silenced on purpose (docs/security.md).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_HTTPONLY = True
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = ["security.W008"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "filters": {"request_id": {"()": "amani.logging.RequestIdFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Request lines come from amani.middleware; Django's own would repeat them.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "ERROR"},
    },
}
