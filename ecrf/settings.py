"""Settings for the eCRF: one module, everything read from the environment.

Local use needs no variable at all (DEBUG defaults off, so set DEBUG=1 or a
SECRET_KEY); `make demo` and `make test` set what they need.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

from ecrf.env import env_bool, env_int, env_json, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool("DEBUG", False)
# `make demo` runs as production does (DEBUG off: the app's own error pages, collected static
# files) on this machine only: a key of its own under ./var/, plain HTTP on localhost.
DEMO = env_bool("DEMO", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY and DEMO:
    from ecrf.env import demo_secret_key

    SECRET_KEY = demo_secret_key(VAR_DIR / "demo-secret-key")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment "
            "(or DEBUG=1 for local development only)."
        )
    SECRET_KEY = "insecure-local-development-key-never-use-in-production"  # noqa: S105  # nosec B105  # DEBUG only

# The seed of the SDV sample (the protocol file's `sdv: sample_percent`): which patients have
# every form verified is drawn from their subject code with it. A secret of the deployment,
# not a line of the protocol file, so that the sites cannot tell which patients are drawn;
# kept for the life of the study (a new seed draws another sample), apart from SECRET_KEY,
# which may be rotated.
SDV_SEED = env_str("SDV_SEED")
if not SDV_SEED:
    if not (DEBUG or DEMO):
        raise ImproperlyConfigured(
            "SDV_SEED is not set. Set SDV_SEED in the environment to a secret kept for the "
            "life of the studies: it draws the patients whose forms are all verified."
        )
    SDV_SEED = "insecure-local-development-sdv-seed"  # the demo's sample is the same each run

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG or DEMO else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_filters",
    "pgtrigger",
    "pghistory",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "ecrf.core",
    "ecrf.accounts",
    "ecrf.studies",
    "ecrf.patients",
    "ecrf.crfs",
    "ecrf.safety",
    "ecrf.review",
    "ecrf.exports",
    "ecrf.api",
    "ecrf.reminders",
    "ecrf.notifications",
    "ecrf.audit",
    "ecrf.demo",
    # After ecrf.audit: on a failed login the audit trail records the failure before axes
    # counts it (and, at the limit, records the lockout).
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "ecrf.core.middleware.SessionIdleExpiry",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "ecrf.accounts.middleware.MembershipsPerRequest",
    "django_otp.middleware.OTPMiddleware",
    "ecrf.core.middleware.NoStoreForSignedInUsers",
    # A control character in the address or a value: a 400, before any view queries.
    "ecrf.core.middleware.RefuseControlCharactersMiddleware",
    "pghistory.middleware.HistoryMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Monitors, data managers and administrators see no study page before a second factor.
    "ecrf.accounts.middleware.TwoFactorRequiredMiddleware",
    # Last, as axes asks: turns a request that hit a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "ecrf.urls"
WSGI_APPLICATION = "ecrf.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "studies:chooser"
LOGOUT_REDIRECT_URL = "login"
# Axes' backend first: it refuses a locked-out account before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: PostgreSQL only -------------------------------------------------------
# DATABASE_URL names a server; without it the embedded PostgreSQL under ./var/ is started.
DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    from ecrf import embedded_pg

    DATABASE_URL = embedded_pg.ensure_running()
# Connections are reused: each web worker process and each Celery worker process keeps one
# open for DB_CONN_MAX_AGE seconds and checks it before reuse (a restarted server costs one
# failed check, not a 500). Persistent connections rather than psycopg's pool: one
# connection per process needs no pool package, works with the Celery prefork workers and
# the test runner alike. Off with DEBUG or DEMO: runserver's thread per request would leave
# one connection per thread. Sizing: README, "Deployment".
try:
    _database = dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0 if DEBUG or DEMO else 600),
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", True),
    )
except Exception as exc:  # dj-database-url raises several types for a malformed URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if _database.get("ENGINE") != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        f"DATABASE_URL must point at PostgreSQL (postgres://...), not {DATABASE_URL.split(':')[0]}:"
    )
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Passwords, sessions -----------------------------------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Idle sessions expire after 30 minutes (21 CFR 11.300): a request pushes the expiry, at
# most once a minute (ecrf.core.middleware.SessionIdleExpiry: not a write per page).
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 30 * 60)
SESSION_REFRESH_SECONDS = env_int("SESSION_REFRESH_SECONDS", 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", not (DEBUG or DEMO))
SESSION_COOKIE_HTTPONLY = True
# In the database, so that any web machine behind the load balancer reads any session.
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- Lockout (django-axes, 21 CFR 11.300(d)) -----------------------------------------
# AXES_FAILURE_LIMIT wrong passwords in a row (login page and password re-entries alike)
# lock the account for AXES_COOLOFF_MINUTES, counted from the last of them; a successful
# login resets the count. See ecrf/accounts/lockout.py.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 30))
# By username only, never by IP address: a hospital's staff reach us through one NAT
# address, so locking the address would lock a whole site out because of one person.
# (axes.W006 warns of exactly this choice: silenced below, on purpose.)
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
# Tries made while locked are refused and recorded (AuthEvent) but do not push the end of the
# lockout, so the page can tell the person when to try again.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "ecrf.accounts.lockout.lockout_response"
# Logins are recorded in the audit trail (AuthEvent), not twice; axes' admin pages would let
# anyone with admin access delete an attempt, an unlock without a reason: the unlock screen
# (account_unlock) is the one way.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False
SILENCED_SYSTEM_CHECKS = ["axes.W006"]

# --- Two-factor login (django-otp): TOTP apps and single-use backup codes ----------------
# The name authenticator apps show beside the account.
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Scleroderma eCRF")
# Backup codes handed out at enrolment, each usable once.
TWO_FACTOR_BACKUP_CODES = env_int("TWO_FACTOR_BACKUP_CODES", 10)

# --- Internationalisation: the sites are in France ----------------------------------
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["ecrf.formats"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "Europe/Paris"

# --- Static files: served by whitenoise, nothing from a CDN -------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
    # The zips of the export screen. By default files under ./var/exports, which serves one
    # machine; a deployment with several web and worker machines points every one of them at
    # the same object store, no code change: EXPORT_STORAGE_BACKEND=storages.backends.s3.S3Storage
    # (django-storages, installed by the deployment) and EXPORT_STORAGE_OPTIONS a JSON object
    # of its options, e.g. {"bucket_name": "ecrf-exports", "endpoint_url": "https://s3.example.org",
    # "default_acl": "private"} (credentials from the environment, AWS_* as boto3 reads them).
    "exports": {
        "BACKEND": env_str("EXPORT_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"),
        "OPTIONS": env_json("EXPORT_STORAGE_OPTIONS", {"location": str(VAR_DIR / "exports")}),
    },
}
# Days an export's zip is kept before the beat task deletes it.
EXPORT_RETENTION_DAYS = env_int("EXPORT_RETENTION_DAYS", 7)

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Audit trail (django-pghistory) --------------------------------------------------
# The context (user, url, reason) is copied into every event row, so an event is
# complete on its own and its table can be made strictly append-only (see ecrf.audit).
import pghistory  # noqa: E402

PGHISTORY_CONTEXT_FIELD = pghistory.ContextJSONField()
PGHISTORY_DEFAULT_TRACKERS = (
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
)
PGHISTORY_MIDDLEWARE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# --- Celery ------------------------------------------------------------------------
# Redis in CI and production; without CELERY_BROKER_URL the demo uses kombu's
# filesystem transport under ./var/celery (no broker server to install).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(VAR_DIR / "celery" / "queue"),
        "data_folder_out": str(VAR_DIR / "celery" / "queue"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {}
)
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "ecrf")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
# A static schedule, in the code: every deployment runs the same sweeps, reviewed with the
# code, and no table can drift from it (django-celery-beat would put it in the database for
# runtime edits nobody needs: the hour reminders go out is the protocol file's `send_at`).
CELERY_BEAT_SCHEDULE = {
    "sweep-reminders": {
        "task": "ecrf.reminders.tasks.sweep_reminders",
        "schedule": env_int("REMINDER_SWEEP_SECONDS", 15 * 60),
    },
    "raise-automatic-queries": {
        "task": "ecrf.review.tasks.raise_automatic_queries",
        "schedule": env_int("AUTO_QUERY_SWEEP_SECONDS", 60 * 60),
    },
    "delete-expired-exports": {
        "task": "ecrf.exports.tasks.delete_expired_exports",
        "schedule": 60 * 60,
    },
    "requeue-exports": {"task": "ecrf.exports.tasks.requeue_exports", "schedule": 5 * 60},
    "retry-pending-notifications": {
        "task": "ecrf.notifications.tasks.send_pending_emails",
        "schedule": 60.0,
    },
}

# --- Email (Django 6.1 mailers) ----------------------------------------------------
# EMAIL_BACKEND picks the backend; the demo writes messages to files under ./var/mail.
EMAIL_BACKEND_PATH = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend"
    if DEBUG or DEMO
    else "django.core.mail.backends.smtp.EmailBackend",
)
if EMAIL_BACKEND_PATH.endswith("filebased.EmailBackend"):
    _mail_options = {"file_path": env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))}
elif EMAIL_BACKEND_PATH.endswith("smtp.EmailBackend"):
    _mail_options = {
        "host": env_str("EMAIL_HOST", "localhost"),
        "port": env_int("EMAIL_PORT", 25),
        "username": env_str("EMAIL_HOST_USER"),
        "password": env_str("EMAIL_HOST_PASSWORD"),
        "use_tls": env_bool("EMAIL_USE_TLS", False),
        "timeout": env_int("EMAIL_TIMEOUT", 30),
    }
else:
    _mail_options = {}
MAILERS = {"default": {"BACKEND": EMAIL_BACKEND_PATH, "OPTIONS": _mail_options}}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "ecrf@localhost")
# The address people reach the site at: the links in emails start with it.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

# --- REST API (ecrf.api): Django REST framework, OpenAPI 3 by drf-spectacular ----------
# A key's calls per minute (a session's, for the browsable pages), counted in the cache:
# CACHE_URL=redis://... when several web machines share the count.
API_THROTTLE_RATE = env_str("API_THROTTLE_RATE", "600/min")
# The longest a personal token may be valid, in days.
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "ecrf.api.auth.BearerTokenAuthentication",
        "ecrf.api.auth.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["ecrf.api.auth.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api": API_THROTTLE_RATE},
    "DEFAULT_PAGINATION_CLASS": "ecrf.api.pagination.Cursor",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["ecrf.api.parsers.CleanJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "ecrf.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "eCRF Sclérodermie API",
    "DESCRIPTION": (
        "The studies, patients, visits and forms of the eCRF, with the same rules as its "
        "screens: what a token's owner may see and do, nothing more."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "PatientStatusEnum": "ecrf.patients.models.Patient.Status",
        "VisitStatusEnum": "ecrf.patients.models.Visit.Status",
        "FormStatusEnum": "ecrf.crfs.base.CrfBase.Status",
        "QueryStatusEnum": "ecrf.review.states.QueryStatus",
    },
}
_cache_url = env_str("CACHE_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Security headers --------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# HTTPS only in production (on by default, off with DEBUG or DEMO, each one can be set):
# plain HTTP is redirected, and browsers are told by HSTS to use nothing else for a year.
_HTTPS = not (DEBUG or DEMO)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _HTTPS)
# The health check answers load balancers' probes over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if _HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", _HTTPS)
# Behind a proxy that ends TLS: the header it sets and its value for HTTPS, for example
# SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https. Only when the proxy always sets it
# (and strips it from clients), or anyone could claim HTTPS.
_proxy_header = env_list("SECURE_PROXY_SSL_HEADER")
if _proxy_header and len(_proxy_header) != 2:
    raise ImproperlyConfigured(
        "SECURE_PROXY_SSL_HEADER must be a header and a value, e.g. HTTP_X_FORWARDED_PROTO,https."
    )
SECURE_PROXY_SSL_HEADER = tuple(_proxy_header) if _proxy_header else None
# Content-Security-Policy: scripts, styles, images and requests from this site only, never
# inline (no <script> body, no style= or on...= attribute in a template: static/js/ and
# static/css/ hold them). data: images are Bootstrap's own icons, drawn in its CSS.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"client_errors": {"()": "ecrf.core.log.ClientErrorWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler would print every record a second time beside root's.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.request": {"filters": ["client_errors"]},
        # django-axes says every successful login and reset at INFO; the audit trail's
        # AuthEvent rows record them, and its lockouts come at WARNING.
        "axes": {"level": "WARNING"},
    },
}
