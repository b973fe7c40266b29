"""Test settings: DATABASE_URL, else the local server (scripts/test_database.py sets it for `make test`)."""

import os

# Tests run with DEBUG off, as production does; they need a key of their own.
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")

from .base import *  # noqa: F403
from .base import DATABASES, env, generic_plans

DATABASES["default"] = env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/postgres")
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default="test_amani")}
generic_plans(DATABASES["default"])

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# No collectstatic before tests: serve from the apps' folders instead of warning about STATIC_ROOT.
WHITENOISE_AUTOREFRESH = True
