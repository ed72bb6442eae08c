"""Settings, all read from the environment (see README "Settings").

Bad values are reported by ``manage.py check`` (eval/checks.py) naming the
variable at fault, instead of crashing at import time.
"""

import importlib.util
import secrets
from pathlib import Path

import dj_database_url

from coreproject import env, local_files

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = Path(env.string("DJANGO_LOCAL_DIR", str(BASE_DIR / ".local")))

DEBUG = env.boolean("DJANGO_DEBUG", False)


def _local_secret_key():
    """A generated key kept in .local/ so sessions survive restarts."""
    return local_files.read_or_create(LOCAL_DIR / "secret-key", lambda: secrets.token_urlsafe(50))


SECRET_KEY = env.string("DJANGO_SECRET_KEY") or _local_secret_key()
SECRET_KEY_FROM_ENV = bool(env.string("DJANGO_SECRET_KEY"))

ALLOWED_HOSTS = env.items("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.items("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",  # login throttling (see "Login throttling" below)
    "eval",
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
    "eval.csp.ContentSecurityPolicyMiddleware",
    # Login attempts on one username, or from one address, one at a time (or a
    # burst is checked before any of its failures is counted).
    "eval.login_throttle.SerialisedLoginMiddleware",
    # Last, as django-axes documents: it turns a refused login into the 429 page.
    "axes.middleware.AxesMiddleware",
]

# django-ninja's templates and static files (/api/docs served locally, no CDN),
# found without importing the package: as an INSTALLED_APPS entry it would load
# ninja and pydantic into every process, workers included (+13 MB each).
NINJA_DIR = Path(importlib.util.find_spec("ninja").submodule_search_locations[0])

ROOT_URLCONF = "coreproject.urls"
WSGI_APPLICATION = "coreproject.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Ours first: coreproject/templates/admin/base_site.html extends Django's.
        "DIRS": [BASE_DIR / "coreproject" / "templates", NINJA_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "eval.pages.context.capabilities",  # `can`: what the user may do (eval/access.py)
                "eval.pages.context.page_urls",  # the pages' URLs for scripts (base.html's <body>)
            ],
        },
    },
]

# --- Database --------------------------------------------------------------
DATABASE_URL = env.string("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
_database = dj_database_url.parse(DATABASE_URL)
if _database["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE transactions + a busy timeout let the web, the worker and
    # the daemon write at once without "database is locked".
    _database["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env.number("SQLITE_BUSY_TIMEOUT_SECONDS", 20),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so worker threads and subprocesses in tests share
    # it; named after the database so parallel suites do not collide.
    _name = Path(_database["NAME"])
    _database["TEST"] = {"NAME": str(_name.with_name(f"test_{_name.name}"))}
elif _database["ENGINE"] == "django.db.backends.postgresql":
    _database["ENGINE"] = "coreproject.postgresql"  # Django's, with a health check without a round trip
    _database.setdefault("OPTIONS", {})
    _database["OPTIONS"].setdefault("application_name", env.string("DATABASE_APPLICATION_NAME", "eval"))
    # Lets server-binding cursors prepare: eval/db.py's (an unchanged poll's
    # session, user and state) and the task sync's. ORM queries bind on the
    # client and are never prepared.
    _database["OPTIONS"].setdefault("prepare_threshold", 5)
    if env.boolean("DATABASE_POOL", False):
        _database["OPTIONS"]["pool"] = {
            "min_size": 1,
            "max_size": env.integer("DATABASE_POOL_MAX_SIZE", 10, minimum=1),
        }
    else:
        _database["CONN_MAX_AGE"] = env.integer("DATABASE_CONN_MAX_AGE", 60, minimum=0)
        _database["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.string("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [NINJA_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "coreproject.static_storage.ModuleManifestStorage"  # hashed names in JS imports too
        )
    },
}

# --- Security (production defaults; DEBUG relaxes what needs TLS) -----------
SECURE_SSL_REDIRECT = env.boolean("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_ENGINE = "eval.sessions"  # the db store, loading with one prepared statement
AUTHENTICATION_BACKENDS = [
    # First, as django-axes documents: refuses a locked-out login before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "eval.auth_backend.ModelBackend",  # Django's, loading the request's user with one prepared statement
]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env.integer("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Login throttling (django-axes, its records in the database: shared by every
# web process and VM; the cache is per process) ------------------------------------
# LOGIN_FAILURE_LIMIT failed logins for one username, or from one address, lock
# that username or address out of /accounts/login/ and /admin/login/ for
# LOGIN_COOLOFF_SECONDS after the last failure: 429 with the reason and Retry-After.
LOGIN_FAILURE_LIMIT = env.integer("LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=1000)
LOGIN_COOLOFF_SECONDS = env.integer("LOGIN_COOLOFF_SECONDS", 900, minimum=1, maximum=30 * 86400)
# The client's address: REMOTE_ADDR, or X-Forwarded-For when REMOTE_ADDR is one of
# these proxies (the variable gunicorn reads for X-Forwarded-Proto, same syntax).
FORWARDED_ALLOW_IPS = env.networks("FORWARDED_ALLOW_IPS", "127.0.0.1")
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks
AXES_FAILURE_LIMIT = "eval.login_throttle.failure_limit"
AXES_COOLOFF_TIME = "eval.login_throttle.cool_off"
AXES_CLIENT_IP_CALLABLE = "eval.client_address.client_address"
AXES_LOCKOUT_CALLABLE = "eval.login_throttle.lockout_response"
# Attempts refused during a lockout are not failures: the lockout ends when the
# 429 said it would, however often it is retried.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A success does not wipe the failures: it would wipe those of every username
# tried from the same address, so one valid account would reset the count.
AXES_RESET_ON_SUCCESS = False
# No row per successful login (an unbounded table); failures are still kept.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False  # no "AXES: BEGIN" line from every process, worker and commands included

# --- Job engine ---------------------------------------------------------------
JOB_TRANSPORT = env.choice("JOB_TRANSPORT", "db", ["db", "pubsub"])
PUBSUB_PROJECT_ID = env.string("PUBSUB_PROJECT_ID", "local-eval")
PUBSUB_TOPIC = env.string("PUBSUB_TOPIC", "llm-jobs")
PUBSUB_SUBSCRIPTION = env.string("PUBSUB_SUBSCRIPTION", "llm-jobs-worker")
PUBSUB_DEAD_LETTER_TOPIC = env.string("PUBSUB_DEAD_LETTER_TOPIC", "llm-jobs-dead-letter")
PUBSUB_MAX_DELIVERY_ATTEMPTS = env.integer("PUBSUB_MAX_DELIVERY_ATTEMPTS", 10, minimum=5, maximum=100)
# Publishing never waits in a request (a background thread per process,
# eval/jobs/publisher.py): each publish gives up after this deadline, and after
# 3 failures in a row the process stops trying for the cool-down (the daemon
# republishes what waits; its step caps each publish to the time it has left).
PUBSUB_PUBLISH_TIMEOUT_SECONDS = env.number("PUBSUB_PUBLISH_TIMEOUT_SECONDS", 2, minimum=0.1)
PUBSUB_BREAKER_COOLDOWN_SECONDS = env.number("PUBSUB_BREAKER_COOLDOWN_SECONDS", 30, minimum=0.1)

ANTHROPIC_API_KEY = env.string("ANTHROPIC_API_KEY")
ANTHROPIC_BASE_URL = env.string("ANTHROPIC_BASE_URL")
ANTHROPIC_MODELS = env.items("ANTHROPIC_MODELS", ["claude-sonnet-4-5:64000", "claude-haiku-4-5:64000"])
ANTHROPIC_MAX_CONCURRENCY = env.integer("ANTHROPIC_MAX_CONCURRENCY", 50, minimum=1)
GEMINI_API_KEY = env.string("GEMINI_API_KEY")
GEMINI_BASE_URL = env.string("GEMINI_BASE_URL")
GEMINI_MODELS = env.items("GEMINI_MODELS", ["gemini-2.5-pro:65536", "gemini-2.5-flash:65536"])
GEMINI_MAX_CONCURRENCY = env.integer("GEMINI_MAX_CONCURRENCY", 50, minimum=1)
# Requests per minute per provider, shared by every worker process through the
# database (eval/worker/provider_rate_limit.py); 0 = unlimited.
ANTHROPIC_REQUESTS_PER_MINUTE = env.integer("ANTHROPIC_REQUESTS_PER_MINUTE", 0, minimum=0, maximum=100_000)
GEMINI_REQUESTS_PER_MINUTE = env.integer("GEMINI_REQUESTS_PER_MINUTE", 0, minimum=0, maximum=100_000)
# OpenAI (OPENAI_API_KEY alone adds provider `openai`) and any server speaking its chat
# completions API (vLLM, Ollama, LM Studio...), one provider per OPENAI_COMPATIBLE_ENDPOINTS entry.
OPENAI_API_KEY = env.string("OPENAI_API_KEY")
OPENAI_BASE_URL = env.string("OPENAI_BASE_URL", "https://api.openai.com/v1")
OPENAI_MODELS = env.items("OPENAI_MODELS", ["gpt-5:128000", "gpt-5-mini:128000", "gpt-4.1:32768", "gpt-4.1-mini:32768"])
OPENAI_MAX_CONCURRENCY = env.integer("OPENAI_MAX_CONCURRENCY", 50, minimum=1)
OPENAI_REQUESTS_PER_MINUTE = env.integer("OPENAI_REQUESTS_PER_MINUTE", 0, minimum=0, maximum=100_000)
OPENAI_COMPATIBLE_ENDPOINTS = env.endpoints("OPENAI_COMPATIBLE_ENDPOINTS")
ECHO_CHUNK_DELAY_MS = env.integer("ECHO_CHUNK_DELAY_MS", 50, minimum=0)
ECHO_ENABLED = env.boolean("ECHO_ENABLED", True)
PROVIDER_REQUEST_TIMEOUT_SECONDS = env.number("PROVIDER_REQUEST_TIMEOUT_SECONDS", 60, minimum=0.1)

WORKER_CONCURRENCY = env.integer("WORKER_CONCURRENCY", 16, minimum=1, maximum=1000)
WORKER_PROCESSES = env.worker_processes()
WORKER_SHUTDOWN_GRACE_SECONDS = env.worker_shutdown_grace_seconds()
WORKER_DB_THREADS = env.integer("WORKER_DB_THREADS", 4, minimum=1, maximum=32)
WORKER_POLL_INTERVAL_MS = env.integer("WORKER_POLL_INTERVAL_MS", 200, minimum=10)
WORKER_FLUSH_INTERVAL_MS = env.integer("WORKER_FLUSH_INTERVAL_MS", 1000, minimum=50)
JOB_LEASE_SECONDS = env.number("JOB_LEASE_SECONDS", 60, minimum=0.5)
JOB_MAX_ATTEMPTS = env.integer("JOB_MAX_ATTEMPTS", 3, minimum=1, maximum=100)
JOB_TIMEOUT_SECONDS = env.number("JOB_TIMEOUT_SECONDS", 600, minimum=0.5)
JOB_RETRY_BASE_DELAY_SECONDS = env.number("JOB_RETRY_BASE_DELAY_SECONDS", 2, minimum=0)
JOB_RETRY_MAX_DELAY_SECONDS = env.number("JOB_RETRY_MAX_DELAY_SECONDS", 120, minimum=0)
JOB_REPUBLISH_AFTER_SECONDS = env.number("JOB_REPUBLISH_AFTER_SECONDS", 300, minimum=1)

TASK_SOURCE = env.string("TASK_SOURCE")
TASK_SOURCE_NAME = env.string("TASK_SOURCE_NAME")
SYNC_INTERVAL_SECONDS = env.number("SYNC_INTERVAL_SECONDS", 60, minimum=0.1)
# A URL task source is read within a total deadline and a size cap (eval/sync/fetch.py):
# a server that drips bytes or answers without end cannot hold the daemon.
SYNC_FETCH_TIMEOUT_SECONDS = env.number("SYNC_FETCH_TIMEOUT_SECONDS", 300, minimum=0.1)
SYNC_FETCH_MAX_BYTES = env.integer("SYNC_FETCH_MAX_BYTES", 1024**3, minimum=1)

POLL_INTERVAL_MS = env.integer("POLL_INTERVAL_MS", 2000, minimum=100)
POLL_OUTPUT_CHARS = env.integer("POLL_OUTPUT_CHARS", 2000, minimum=1)
MAX_PROMPT_CHARS = env.integer("MAX_PROMPT_CHARS", 200_000, minimum=1)
# The longest one prompt template may take to render for one task (eval/jobs/sandbox.py).
TEMPLATE_RENDER_SECONDS = env.number("TEMPLATE_RENDER_SECONDS", 1, minimum=0.05)
API_MAX_BODY_BYTES = env.integer("API_MAX_BODY_BYTES", 1_000_000, minimum=1024)
# A dataset upload (POST /api/datasets/<name>/imports) may be this large; chunked bodies
# are buffered up to the larger of the two limits (coreproject/chunked_bodies.py).
DATASET_MAX_UPLOAD_BYTES = env.integer("DATASET_MAX_UPLOAD_BYTES", 100_000_000, minimum=1024)
JOB_CREATE_RATE = env.rate("JOB_CREATE_RATE", "30/m")
MAX_QUEUED_JOBS_PER_USER = env.integer("MAX_QUEUED_JOBS_PER_USER", 200, minimum=1)

# Evaluation (DESIGN "Evaluation"): blind pairs and judgements.
PAIR_TARGET_JUDGEMENTS = env.integer("PAIR_TARGET_JUDGEMENTS", 2, minimum=1, maximum=1000)
PAIR_TOKEN_MAX_AGE_SECONDS = env.integer("PAIR_TOKEN_MAX_AGE_SECONDS", 86400, minimum=10)
JUDGEMENT_UNDO_SECONDS = env.integer("JUDGEMENT_UNDO_SECONDS", 300, minimum=0)
# Runs and cost control: prices override the built-in table (model-name prefix ->
# [USD per million input tokens, per million output]); a launch estimated above
# BULK_CONFIRM_COST_USD needs confirming; USER_DAILY_BUDGET_USD (0 = off) caps each
# user's launches per day.
MODEL_PRICES = env.prices("MODEL_PRICES")
BULK_CONFIRM_COST_USD = env.number("BULK_CONFIRM_COST_USD", 5.0, minimum=0)
USER_DAILY_BUDGET_USD = env.number("USER_DAILY_BUDGET_USD", 0.0, minimum=0)
METRICS_TOKEN = env.string("METRICS_TOKEN")

# Alerts (DESIGN "Alerts"; eval/alerts/): the daemon's rules, and where they are sent.
ALERT_NO_WORKER_SECONDS = env.number("ALERT_NO_WORKER_SECONDS", 120, minimum=0)
ALERT_QUEUE_AGE_SECONDS = env.number("ALERT_QUEUE_AGE_SECONDS", 600, minimum=0)
ALERT_WINDOW_SECONDS = env.number("ALERT_WINDOW_SECONDS", 600, minimum=1)
ALERT_FAILURE_RATE = env.number("ALERT_FAILURE_RATE", 0.2, minimum=0)  # at most 1 (eval/checks.py)
ALERT_MIN_FAILURES = env.integer("ALERT_MIN_FAILURES", 5, minimum=1)
ALERT_REPEAT_SECONDS = env.number("ALERT_REPEAT_SECONDS", 3600, minimum=1)
ALERT_EMAILS = env.items("ALERT_EMAILS")
ALERT_WEBHOOK_URL = env.string("ALERT_WEBHOOK_URL")  # a secret: never logged (coreproject/logformat.py)
# The longest one email or webhook call may take; the daemon's alert step takes at most three.
ALERT_SEND_TIMEOUT_SECONDS = env.number("ALERT_SEND_TIMEOUT_SECONDS", 5, minimum=0.1)
EMAIL_HOST = env.string("EMAIL_HOST", "localhost")
EMAIL_PORT = env.integer("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env.string("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env.string("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env.boolean("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env.string("DEFAULT_FROM_EMAIL", "eval@localhost")
EMAIL_TIMEOUT = ALERT_SEND_TIMEOUT_SECONDS

GUNICORN_BIND = env.string("GUNICORN_BIND", "127.0.0.1:8000")

# --- Logging ----------------------------------------------------------------
LOG_FORMAT = env.choice("LOG_FORMAT", "text", ["text", "json"])
LOG_LEVEL = env.string("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "coreproject.logformat.JsonFormatter"},
    },
    # Every line passes both filters: job_id/worker_id from the job's context,
    # and secret values (API keys, METRICS_TOKEN, the secret key, the database
    # password) replaced by [REDACTED] (coreproject/logformat.py).
    "filters": {
        "job_context": {"()": "coreproject.logformat.JobContextFilter"},
        "redact_secrets": {"()": "coreproject.logformat.RedactSecretsFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["job_context", "redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Our handler only (Django's own console/mail handlers bypass the filters).
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},  # its failures and lockouts; not an INFO line per attempt
        "httpx2": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "google": {"level": "WARNING"},
    },
}

ENV_ERRORS = env.ERRORS
