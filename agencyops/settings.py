"""AgencyOps settings: embedded defaults for a laptop, env values for production.

Production differs only by environment values. With DEBUG off, a missing SECRET_KEY or master
key stops the process at start with a message naming the variable.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from kernel.env import env_bool, env_int, env_list, env_str
from kernel.local_roots import local_roots_parse

# Lets admin.ModelAdmin[Model] and friends be subscripted at run time (types checked by mypy).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("AGENCYOPS_VAR_DIR") or BASE_DIR / "var")

DEBUG = env_bool("DEBUG", default=True)

_secret_key = env_str("SECRET_KEY")
_master_key = env_str("AGENCYOPS_MASTER_KEY")
_master_key_file = env_str("AGENCYOPS_MASTER_KEY_FILE")
if not DEBUG:
    _missing = [
        name
        for name, value in (
            ("SECRET_KEY", _secret_key),
            (
                "AGENCYOPS_MASTER_KEY (or AGENCYOPS_MASTER_KEY_FILE)",
                _master_key or _master_key_file,
            ),
        )
        if not value
    ]
    if _missing:
        raise ImproperlyConfigured(
            "AgencyOps refuses to start with DEBUG off: set " + " and ".join(_missing) + "."
        )
# The development key is public by design; production must supply its own (checked above).
SECRET_KEY = _secret_key or "django-insecure-agencyops-development-only"

# The master key wraps every dataset key and every stored credential. Base64 of 32 bytes.
AGENCYOPS_MASTER_KEY = _master_key
AGENCYOPS_MASTER_KEY_FILE = Path(_master_key_file) if _master_key_file else VAR_DIR / "master.key"
# Only the embedded (DEBUG) setup may create the key file on first use.
AGENCYOPS_MASTER_KEY_AUTOCREATE = DEBUG and not _master_key_file

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "auditlog",
    "agencyops",
    "clients",
    "backups",
    "lifecycle",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "kernel.headers.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication (it reads request.user): the viewer's own time zone for dates.
    "clients.middleware.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    # After authentication (it reads request.user): opens the request's tenant scope.
    "agencyops.middleware.TenantScopeMiddleware",
]

ROOT_URLCONF = "agencyops.urls"
WSGI_APPLICATION = "agencyops.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "kernel.pages.actor_context",
            ],
            # The shared filters (one date format, durations and labels in words) in every
            # template without a {% load %} of their own.
            "builtins": ["agencyops.templatetags.agencyops_tags"],
        },
    },
]


def _database() -> dict[str, Any]:
    url = env_str("DATABASE_URL")
    if url:
        config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60))
        config["CONN_HEALTH_CHECKS"] = True
        return config
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "agencyops.sqlite3",
        # Web server, worker and beat share the file: WAL lets readers run beside the writer
        # and IMMEDIATE transactions take the write lock up front instead of failing mid-way.
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


DATABASES = {"default": _database()}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Tests get a file, not SQLite's in-memory default: the integration tests' Celery worker is
    # another process and must open the same test database. One file per test process, so two
    # test runs in one checkout never overwrite each other's database.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("TEST", {"NAME": VAR_DIR / f"test-{os.getpid()}.sqlite3"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# Bodies beyond this are refused with a 400 before parsing (the API parser enforces it too).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("AGENCYOPS_MAX_BODY_BYTES", 1024 * 1024)

# Security headers and cookies: strict whenever DEBUG is off.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
if env_bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# The kernel asks this function for the actor of a signed-in user (memberships and grants
# live in `clients`; the kernel imports no app).
AGENCYOPS_ACTOR_RESOLVER = "clients.actors.actor_for_user"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Bearer first: its WWW-Authenticate header turns "not logged in" into 401, not 403.
        # Procurement tokens before personal ones: each class answers for its own prefix.
        "lifecycle.authentication.ProcurementTokenAuthentication",
        "clients.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["kernel.rest.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "kernel.rest.Pagination",
    "DEFAULT_METADATA_CLASS": "kernel.rest.Metadata",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "kernel.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(  # type: ignore[attr-defined]  # list value
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

SPECTACULAR_SETTINGS = {
    "TITLE": "AgencyOps API",
    "DESCRIPTION": "Client data inventory, backups, deletions and procurement evidence.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's files come from drf-spectacular-sidecar, served as this site's static files:
    # no CDN, and the page runs under the same CSP as every other (its init script is a file).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ClientStatusEnum": "clients.models.ClientStatus",
        "EngagementStatusEnum": "clients.models.EngagementStatus",
        "RunStatusEnum": "backups.models.RunStatus",
        # two fields named "action": the access log's and a posture fix's
        "AccessActionEnum": "lifecycle.models.AccessAction",
        "FixActionEnum": "backups.models.FixAction",
    },
}

# django-guardian: no anonymous user row; object permissions belong to real users only.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

# django-auditlog: record who changed what; secrets are excluded per model at registration.
AUDITLOG_INCLUDE_ALL_MODELS = False

# Celery: JSON only, late acknowledgement so a killed worker's task is redelivered, one task
# prefetched at a time because backup jobs are long.
# Cache: sign-in throttling counters. Per process by default (one web process in the embedded
# setup); production sets CACHE_URL=redis://... so every web process shares them.
_cache_url = env_str("CACHE_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# Sign-in throttling (agencyops/signin.py): failures per (username, address) and per address
# within the window before the form answers 429.
AGENCYOPS_SIGNIN_ACCOUNT_LIMIT = env_int("AGENCYOPS_SIGNIN_ACCOUNT_LIMIT", 5)
AGENCYOPS_SIGNIN_ADDRESS_LIMIT = env_int("AGENCYOPS_SIGNIN_ADDRESS_LIMIT", 30)
AGENCYOPS_SIGNIN_WINDOW_SECONDS = env_int("AGENCYOPS_SIGNIN_WINDOW_SECONDS", 15 * 60)

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Redis redelivers an unacknowledged task after this long; longer than any backup run.
    # (The integration tests shorten it to watch a killed worker's task come back.)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("AGENCYOPS_BROKER_VISIBILITY_TIMEOUT", 6 * 60 * 60)
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Access events are recorded as pending rows and drained into their chain by a worker; "inline"
# drains in the recording process after its commit instead (the test suite, so a test never
# publishes to a developer's broker).
AGENCYOPS_ACCESS_LOG_INLINE = env_bool("AGENCYOPS_ACCESS_LOG_INLINE", default=False)

# Restore drills restore into a fresh directory here (one per drill, named by its id) and delete
# it when the drill ends. Workers need room for the largest dataset drilled.
AGENCYOPS_SCRATCH_DIR = Path(env_str("AGENCYOPS_SCRATCH_DIR") or VAR_DIR / "scratch")
# Git mirrors (one per git dataset), backup staging of repositories and database dumps, and
# uploaded SaaS exports waiting for their backup live under the scratch too.

# The largest SaaS export a lead may upload (checked while it streams in), 10 GiB by default.
AGENCYOPS_EXPORT_MAX_BYTES = env_int("AGENCYOPS_EXPORT_MAX_BYTES", 10 * 1024**3)

# Cold tiers: restores, drills, verifies and downloads first retrieve the file content a policy
# wrote to an archive class (GLACIER, DEEP_ARCHIVE) with S3 RestoreObject, at this tier
# (Expedited: minutes, GLACIER only, DEEP_ARCHIVE then takes Standard; Standard: hours; Bulk:
# up to two days, cheapest), as copies kept for this many days; they check every POLL seconds
# and fail past MAX_WAIT hours.
AGENCYOPS_ARCHIVE_RETRIEVAL_TIER = env_str("AGENCYOPS_ARCHIVE_RETRIEVAL_TIER") or "Standard"
if AGENCYOPS_ARCHIVE_RETRIEVAL_TIER not in ("Standard", "Bulk", "Expedited"):
    raise ImproperlyConfigured(
        "AGENCYOPS_ARCHIVE_RETRIEVAL_TIER must be Standard, Bulk or Expedited, not "
        f"{AGENCYOPS_ARCHIVE_RETRIEVAL_TIER!r}."
    )
AGENCYOPS_ARCHIVE_RETRIEVAL_DAYS = env_int("AGENCYOPS_ARCHIVE_RETRIEVAL_DAYS", 2)
AGENCYOPS_ARCHIVE_POLL_SECONDS = env_int("AGENCYOPS_ARCHIVE_POLL_SECONDS", 300)
AGENCYOPS_ARCHIVE_MAX_WAIT_HOURS = env_int("AGENCYOPS_ARCHIVE_MAX_WAIT_HOURS", 48)
for _name in ("RETRIEVAL_DAYS", "POLL_SECONDS", "MAX_WAIT_HOURS"):
    if globals()[f"AGENCYOPS_ARCHIVE_{_name}"] < 1:
        raise ImproperlyConfigured(f"AGENCYOPS_ARCHIVE_{_name} must be at least 1.")

# --- self backup ---
# Where AgencyOps backs up its own database (backups/services/selfbackup/), comma-separated:
# storage location ids (UUIDs) and directories of the operator's (file:///dir or /dir; refused
# inside or around an AGENCYOPS_LOCAL_ROOTS entry, which is tenant space). The dump holds every
# organization's rows and sealed keys, so name only places no tenant controls. Empty: the
# targets of the "records" policy while there is a single organization; with several, the
# self-backup writes nowhere and fails, and serve_all and the workers warn at start.
AGENCYOPS_SELF_BACKUP_LOCATIONS = env_list("AGENCYOPS_SELF_BACKUP_LOCATIONS", [])

# Grants default to this lifetime when the granting admin names none.
AGENCYOPS_DEFAULT_GRANT_DAYS = env_int("AGENCYOPS_DEFAULT_GRANT_DAYS", 90)
AGENCYOPS_TOKEN_DEFAULT_DAYS = env_int("AGENCYOPS_TOKEN_DEFAULT_DAYS", 365)
# Nothing lives longer than these: a personal token or a grant asked for beyond them is refused.
AGENCYOPS_TOKEN_MAX_DAYS = env_int("AGENCYOPS_TOKEN_MAX_DAYS", 366)
AGENCYOPS_GRANT_MAX_DAYS = env_int("AGENCYOPS_GRANT_MAX_DAYS", 366)

# --- containment: what a tenant's request may reach (the operator's to set) ---
# Directories that may hold local storage locations; an organization's locations live in its
# folder `<root>/<organization slug>/` of a root. A root that would expose AgencyOps' own state
# (the var directory, the master key, the database, the broker, the scratch space, the
# installation) is refused here, at start.
_protected = [VAR_DIR, AGENCYOPS_MASTER_KEY_FILE, AGENCYOPS_SCRATCH_DIR, BASE_DIR]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    _protected.append(Path(DATABASES["default"]["NAME"]))
if CELERY_BROKER_URL.startswith("filesystem://"):
    _protected.append(VAR_DIR / "broker")
try:
    AGENCYOPS_LOCAL_ROOTS = local_roots_parse(
        env_list("AGENCYOPS_LOCAL_ROOTS", [str(VAR_DIR / "storage")]), protected=_protected
    )
except ValueError as _exc:
    raise ImproperlyConfigured(str(_exc)) from None
# Hosts and networks (names, addresses or CIDRs, comma-separated) a worker may reach on a
# tenant's behalf although they are loopback, private, link-local or otherwise internal (an
# on-premises MinIO, say). The cloud metadata addresses are never reachable.
AGENCYOPS_EGRESS_ALLOW = env_list("AGENCYOPS_EGRESS_ALLOW", [])
# S3 locations without stored credentials would use the server's own (environment, instance
# role): off unless the operator allows it, and then only owners may create such a location.
AGENCYOPS_ALLOW_AMBIENT_CREDENTIALS = env_bool("AGENCYOPS_ALLOW_AMBIENT_CREDENTIALS", False)

# Storage list prices in USD per GB-month (GB = 2**30 bytes) by provider and storage class, for
# the cost estimate; an organization overrides any of them (StoragePrice rows, admin and API). A
# class a provider does not list costs what its STANDARD costs. Self-hosted MinIO/Ceph and local
# disks are priced 0: the agency pays for them as hardware, not per GB.
AGENCYOPS_STORAGE_PRICES: dict[str, dict[str, str]] = {
    "aws": {
        "STANDARD": "0.023",
        "STANDARD_IA": "0.0125",
        "GLACIER_IR": "0.004",
        "DEEP_ARCHIVE": "0.00099",
    },
    # Standard, Nearline, Coldline, Archive (regional)
    "gcs": {
        "STANDARD": "0.020",
        "STANDARD_IA": "0.010",
        "GLACIER_IR": "0.004",
        "DEEP_ARCHIVE": "0.0012",
    },
    # Hot, Cool, Cold, Archive (LRS)
    "azure": {
        "STANDARD": "0.018",
        "STANDARD_IA": "0.010",
        "GLACIER_IR": "0.0036",
        "DEEP_ARCHIVE": "0.002",
    },
    "backblaze": {"STANDARD": "0.006"},
    "wasabi": {"STANDARD": "0.0069"},
    "minio": {"STANDARD": "0"},
    "ceph": {"STANDARD": "0"},
    "other": {"STANDARD": "0.023"},
    "filesystem": {"STANDARD": "0"},
}
# USD per GB read back from an archive class, by provider, class and retrieval tier, for the
# cost estimate's retrieval line (AWS list prices; DEEP_ARCHIVE has no Expedited tier). Only
# AWS offers these classes through its S3 API (backups/services/storage_classes.py).
AGENCYOPS_RETRIEVAL_PRICES: dict[str, dict[str, dict[str, str]]] = {
    "aws": {
        "GLACIER": {"Expedited": "0.03", "Standard": "0.01", "Bulk": "0"},
        "DEEP_ARCHIVE": {"Standard": "0.02", "Bulk": "0.0025"},
    },
}
SESSION_COOKIE_AGE = int(timedelta(hours=12).total_seconds())

# Alerts: links in e-mails and webhook messages point here.
AGENCYOPS_SITE_URL = env_str("AGENCYOPS_SITE_URL") or "http://127.0.0.1:8000"
# E-mail (Django's mail settings). The embedded default prints mails on the console; production
# sets EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST etc.
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or (
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = env_str("EMAIL_HOST") or "localhost"
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
# Only read by the file-based backend (the integration tests' worker writes mails there).
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH") or str(VAR_DIR / "mail")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL") or "AgencyOps <agencyops@localhost>"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL") or "INFO"},
    "loggers": {
        # botocore logs request parameters at DEBUG; keep it quiet so credentials never leak.
        "botocore": {"level": "WARNING"},
        "boto3": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
