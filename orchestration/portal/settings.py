"""The portal's Django settings, from the environment (docs/portal.md lists every variable).

Django reads its settings once, when the site starts; the data folder's contents (releases,
reports, the ops snapshot) are found again at each request through `partnership.settings`.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from csp.constants import NONE, SELF

from orchestration.partnership.settings import get_settings

PORTAL_DIR = Path(__file__).resolve().parent


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _flag(name: str) -> bool:
    return _env(name).lower() in ("1", "true", "yes", "on")


def portal_data_dir() -> Path:
    """`<data>/portal/`: the portal's database, secret key and the ops snapshot."""
    return get_settings().data_dir / "portal"


def _secret_key() -> str:
    """`PORTAL_SECRET_KEY`, else a random key kept in `<data>/portal/secret_key` (owner-only)."""
    if _env("PORTAL_SECRET_KEY"):
        return _env("PORTAL_SECRET_KEY")
    path = Path(_env("PORTAL_SECRET_KEY_FILE") or portal_data_dir() / "secret_key")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = _flag("PORTAL_DEBUG")
# The loopback development server (`partnership portal`) is the only place session and CSRF
# cookies may go without `Secure`: it serves plain HTTP, and then answers loopback names only.
LOOPBACK_DEV = _flag("PORTAL_LOOPBACK_DEV")
LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
ALLOWED_HOSTS = LOOPBACK_HOSTS if LOOPBACK_DEV else [
    h.strip() for h in (_env("PORTAL_ALLOWED_HOSTS") or "localhost,127.0.0.1").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in _env("PORTAL_CSRF_TRUSTED_ORIGINS").split(",") if o.strip()]
if _flag("PORTAL_BEHIND_PROXY"):  # a reverse proxy terminating TLS sets X-Forwarded-Proto
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = False

OIDC_ENABLED = bool(_env("PORTAL_OIDC_CLIENT_ID"))

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "axes",
    "csp",
    "orchestration.portal.apps.PortalConfig",
    *(["mozilla_django_oidc"] if OIDC_ENABLED else []),
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "orchestration.portal.access.AccessLogMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "orchestration.portal.urls"
WSGI_APPLICATION = "orchestration.portal.wsgi.application"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
        "orchestration.portal.navigation.navigation",
    ]},
}]

DATABASES = {"default": {
    "ENGINE": "orchestration.portal.sqlite",
    "NAME": _env("PORTAL_DATABASE") or str(portal_data_dir() / "portal.sqlite3"),
    # WAL: readers never wait for the access log's writes; gunicorn's workers share the file.
    "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Argon2id first: new and changed passwords are hashed with it; the others only read old hashes.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: a locked-out account is refused before any check
    "django.contrib.auth.backends.ModelBackend",
    *(["orchestration.portal.oidc.PortalOIDCBackend"] if OIDC_ENABLED else []),
]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:login"

# Lockout: five failed sign-ins to one account (from anywhere) or from one address lock it for 15 minutes.
AXES_FAILURE_LIMIT = int(_env("PORTAL_LOCKOUT_FAILURES") or 5)
AXES_COOLOFF_TIME = timedelta(minutes=int(_env("PORTAL_LOCKOUT_MINUTES") or 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own: an account, or a client
AXES_LOCKOUT_TEMPLATE = "portal/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_SENSITIVE_PARAMETERS = ["password"]

# Sessions: cookies never readable by script, sent only over HTTPS (except the loopback dev
# server), and ended after `PORTAL_IDLE_MINUTES` without a request (every request renews it).
SESSION_COOKIE_AGE = 60 * int(_env("PORTAL_IDLE_MINUTES") or 30)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = not LOOPBACK_DEV
SESSION_COOKIE_NAME = "portal_session" if LOOPBACK_DEV else "__Host-portal_session"
CSRF_COOKIE_SECURE = not LOOPBACK_DEV
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Strict"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = not LOOPBACK_DEV and _flag("PORTAL_SSL_REDIRECT")
SECURE_HSTS_SECONDS = 0 if LOOPBACK_DEV else int(_env("PORTAL_HSTS_SECONDS") or 0)

# No inline script anywhere, no asset from elsewhere: htmx comes from django-htmx's own copy.
CONTENT_SECURITY_POLICY = {"DIRECTIVES": {
    "default-src": [NONE],
    "script-src": [SELF],
    "style-src": [SELF],
    "img-src": [SELF, "data:"],
    "font-src": [SELF],
    "connect-src": [SELF],
    "form-action": [SELF],
    "frame-ancestors": [NONE],
    "base-uri": [NONE],
    "object-src": [NONE],
}}

# Uploads: a corrected delivery is checked before it is placed; bigger files go by the usual route.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every upload goes to a temporary file, never held in memory
FILE_UPLOAD_PERMISSIONS = 0o600
PORTAL_UPLOAD_MAX_BYTES = int(_env("PORTAL_UPLOAD_MAX_MB") or 200) * 1024 * 1024

STATIC_URL = "static/"
# `collectstatic` only for a proxy that serves the files itself (docs/portal.md); otherwise
# WhiteNoise serves the app's and django-htmx's files straight from the installed packages.
STATIC_ROOT = _env("PORTAL_STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_TZ = True
USE_I18N = False

PORTAL_DAGSTER_URL = _env("PORTAL_DAGSTER_URL") or "http://127.0.0.1:3000"

if OIDC_ENABLED:  # single sign-on for partners that have it: an existing account, matched by e-mail
    OIDC_RP_CLIENT_ID = _env("PORTAL_OIDC_CLIENT_ID")
    OIDC_RP_CLIENT_SECRET = _env("PORTAL_OIDC_CLIENT_SECRET")
    OIDC_OP_AUTHORIZATION_ENDPOINT = _env("PORTAL_OIDC_AUTHORIZATION_ENDPOINT")
    OIDC_OP_TOKEN_ENDPOINT = _env("PORTAL_OIDC_TOKEN_ENDPOINT")
    OIDC_OP_USER_ENDPOINT = _env("PORTAL_OIDC_USER_ENDPOINT")
    OIDC_OP_JWKS_ENDPOINT = _env("PORTAL_OIDC_JWKS_ENDPOINT")
    OIDC_RP_SIGN_ALGO = _env("PORTAL_OIDC_SIGN_ALGO") or "RS256"
    OIDC_CREATE_USER = False  # roles are given in the portal; an unknown identity gets nothing
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append(OIDC_OP_AUTHORIZATION_ENDPOINT)

LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "loggers": {"django": {"handlers": ["console"], "level": "WARNING"},
                       "axes": {"handlers": ["console"], "level": "WARNING"}}}
