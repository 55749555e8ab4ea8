"""Settings read from the environment.

With no environment at all the platform runs as the zero-setup demo: SQLite in ``var/``,
an in-memory channel layer, and a Celery worker fed through a filesystem broker. Production sets
``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL`` (channel layer, Celery broker and results).
"""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("RESPECT_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env(
    DJANGO_DEBUG=(bool, False),
    DJANGO_ALLOWED_HOSTS=(list, ["localhost", "127.0.0.1", "[::1]"]),
    DJANGO_CSRF_TRUSTED_ORIGINS=(list, []),
    REDIS_URL=(str, ""),
)

DEBUG = env("DJANGO_DEBUG")
# The demo's public key; with DEBUG off the system checks (config.checks) refuse to start with it.
DEMO_SECRET_KEY = "insecure-demo-key-change-me-in-production"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=DEMO_SECRET_KEY)
ALLOWED_HOSTS = env("DJANGO_ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env("DJANGO_CSRF_TRUSTED_ORIGINS")

# Keys protecting crowdworker identities: the HMAC key makes the stored hash, the Fernet key
# encrypts the raw platform id that payments need. Unset, both are derived from SECRET_KEY (the
# demo); with DEBUG off the system checks require them (and DJANGO_SECRET_KEY) to be set.
WORKER_ID_HMAC_KEY = env.str("WORKER_ID_HMAC_KEY", default="")
WORKER_ID_ENCRYPTION_KEY = env.str("WORKER_ID_ENCRYPTION_KEY", default="")
# Lifetime in seconds of the signed crowd-session tokens in worker page URLs (annotation.tokens).
WORKER_TOKEN_MAX_AGE = env.int("WORKER_TOKEN_MAX_AGE", default=24 * 3600)

# Behind a TLS-terminating proxy (see README, "Production"): the proxy's X-Forwarded-Proto makes
# request.is_secure() and every absolute URL (Prolific and MTurk links) https.
if env.bool("DJANGO_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
# MTurk game tasks run the lobby and game pages inside MTurk's iframe, where only SameSite=None
# cookies (which browsers accept only with Secure) reach them.
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = env.str("DJANGO_COOKIE_SAMESITE", default="Lax")

INSTALLED_APPS = [
    "daphne",
    "config.apps.PlatformConfig",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "games",
    "annotation",
    "evaluation",
    "models_svc",
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
    # A CSP on every page; crowd pages may be framed by MTurk (config.framing).
    "config.framing.CrowdCSPMiddleware",
    "config.framing.CrowdFrameExemptMiddleware",
]

AUTHENTICATION_BACKENDS = ["config.login_throttle.ThrottledModelBackend"]
# Failed logins per username and client address before logins are refused for the window.
LOGIN_THROTTLE_FAILURES = env.int("LOGIN_THROTTLE_FAILURES", default=5)
LOGIN_THROTTLE_WINDOW = env.int("LOGIN_THROTTLE_WINDOW", default=15 * 60)
LOGIN_THROTTLE_CACHE = "login_throttle"

# The platform's own scripts and styles only (no inline scripts); crowd pages are framed by MTurk
# and post the finished HIT back to it (CROWD_FRAMED_VIEWS, config.framing).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
CROWD_FRAME_ANCESTORS = ["https://*.mturk.com"]
CROWD_FRAMED_VIEWS = {
    "annotation:prolific",
    "annotation:mturk",
    "annotation:arrival-refused",
    "annotation:entry",
    "annotation:consent",
    "annotation:guidelines",
    "annotation:quiz",
    "annotation:survey",
    "games:lobby",
    "games:play_lobby_leave",
    "games:play_game",
    "games:play_survey",
    "games:play_done",
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'demo.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0))
# SQLite as a real embedded database: readers never wait for the writer (write-ahead log), a
# writer waits its turn (busy timeout) instead of failing with "database is locked", and every
# transaction takes the write lock when it begins (IMMEDIATE), so two transactions that read and
# then write never deadlock on upgrading their locks (SQLite cannot wait for that case).
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    _sqlite_options = DATABASES["default"].setdefault("OPTIONS", {})
    _sqlite_options.setdefault("timeout", env.int("SQLITE_BUSY_TIMEOUT", default=60))
    _sqlite_options.setdefault("transaction_mode", "IMMEDIATE")
    _sqlite_options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")
    # SQLite ignores the conditional unique constraints (nulls distinct) that PostgreSQL holds; the
    # services check those cases before writing, and the warning would open every command.
    SILENCED_SYSTEM_CHECKS = ["models.W047"]
# Lets several test runs share one PostgreSQL server without colliding on the test database.
if env.str("TEST_DB_SUFFIX", default=""):
    DATABASES["default"]["TEST"] = {
        "NAME": f"test_{DATABASES['default']['NAME']}{env.str('TEST_DB_SUFFIX')}"
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "config.pubsub.ConcurrentPublishLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The default cache stays per process; login failures are counted where every web process sees
# them (Redis in production).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    LOGIN_THROTTLE_CACHE: (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "respect-login",
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "login"}
    ),
}

# Celery: Redis in production and CI; a filesystem broker for the zero-setup demo, so the demo
# still runs tasks in a real background worker process.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_RESULT_BACKEND = env.str(
    "CELERY_RESULT_BACKEND", default=REDIS_URL or f"file://{VAR_DIR / 'celery-results'}"
)
# Long runs (metric, decoding, scoring, training) beat a heartbeat at every batch, progress
# report or checkpoint (config.heartbeat). A running run silent for longer than its stale
# setting lost its worker: launching it again (or Resume) queues it again. Size each stale
# setting above the longest gap between two heartbeats of a live run of that kind.
RUN_STALE_SECONDS = env.int("RESPECT_RUN_STALE_SECONDS", default=600)
# A run still queued this long after its task was sent was never claimed (its broker message
# was lost, e.g. a Redis restart): asking for it again sends it again. A duplicate message for
# a run that merely waits behind others is harmless (one delivery claims it).
RUN_QUEUED_STALE_SECONDS = env.int("RESPECT_RUN_QUEUED_STALE_SECONDS", default=900)
# A task a killed worker had taken comes back after the broker's visibility timeout (Redis),
# counted from when the worker took it; the delivery claims the run only once it is stale. So
# size it as the largest stale setting plus a typical run's length (README: "Killed workers").
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
    if REDIS_URL
    else {
        "data_folder_in": str(VAR_DIR / "celery-broker"),
        "data_folder_out": str(VAR_DIR / "celery-broker"),
        "processed_folder": str(VAR_DIR / "celery-processed"),
        "control_folder": str(VAR_DIR / "celery-control"),
        "store_processed": False,
    }
)
CELERY_TASK_DEFAULT_QUEUE = "default"
# Two kinds of GPU work, two queues (README "Deployment", docs/serving.md): live listener turns,
# and only they, on GPU_LIVE_QUEUE, served by a worker that never runs batch work; decoding,
# scoring, embeddings, training and checkpoint checks on GPU_BATCH_QUEUE. Exact task names are
# matched before the pattern, so listener_act goes live and every other model task to batch.
GPU_LIVE_QUEUE = env.str("RESPECT_GPU_LIVE_QUEUE", default="gpu-live")
GPU_BATCH_QUEUE = env.str("RESPECT_GPU_BATCH_QUEUE", default="gpu-batch")
CELERY_TASK_ROUTES = {
    "models_svc.tasks.listener_act": {"queue": GPU_LIVE_QUEUE},
    "models_svc.tasks.*": {"queue": GPU_BATCH_QUEUE},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "staticfiles"))
MEDIA_URL = "/media/"
MEDIA_ROOT = env.str("DJANGO_MEDIA_ROOT", default=str(VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's parsers, with a JSON parser that refuses deep or huge bodies (a 400, not a 500).
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "config.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ReSpect study platform API",
    "DESCRIPTION": (
        "Metric runs of a study; annotation batches, their gold items and agreement, quizzes "
        "and game tasks (researchers); the crowdworkers' survey work; payments, bonuses and "
        "session pay (admins). Studies, rounds, games and model runs are managed on the pages "
        "and with management commands."
    ),
    "VERSION": "0.1.0",
    # Swagger UI's files come from the app (drf-spectacular-sidecar), not a CDN: /api/docs/
    # works without internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Names of the metric runs' choice sets, which share field names with other models' choices.
    "ENUM_NAME_OVERRIDES": {
        "MetricRunStatusEnum": "evaluation.models.MetricRun.Status",
        "MetricRunMethodEnum": "evaluation.models.MetricRun.Method",
        "MetricRunConventionsEnum": "evaluation.models.MetricRun.Conventions",
    },
}

# Directory with KILOGRAM tangram PNGs, used by import_tangrams when no DIR is given.
TANGRAM_DIR = env.str("TANGRAM_DIR", default="")
# Model service backends and checkpoint paths (see models_svc).
MODELS_SVC = {
    "DECODER": env.str("RESPECT_DECODER", default="lexicon"),
    "POLICY": env.str("RESPECT_POLICY", default="random"),
    "EMBEDDER": env.str("RESPECT_EMBEDDER", default=""),
}
# Model-service worker options (see models_svc.registry.model_options).
MODELS_SVC |= {
    "DEVICE": env.str("RESPECT_MODEL_DEVICE", default="auto"),
    "DTYPE": env.str("RESPECT_MODEL_DTYPE", default="auto"),
    "BATCH_SIZE": env.int("RESPECT_DECODER_BATCH_SIZE", default=64),
    "DECODER_MODE": env.str("RESPECT_DECODER_MODE", default="score"),
    "TEMPERATURE": env.float("RESPECT_POLICY_TEMPERATURE", default=1.0),
    "POLICY_MAX_BATCH": env.int("RESPECT_POLICY_MAX_BATCH", default=32),
    # Live turns of concurrent games (any adapter of one base) answered in one forward pass:
    # the first waits this long for company (docs/serving.md).
    "POLICY_BATCH_WAIT_MS": env.float("RESPECT_POLICY_BATCH_WAIT_MS", default=5.0),
    # Bytes of model parameters a worker keeps; least-recently-used adapters and bases beyond
    # it are dropped (0: keep everything loaded).
    "MEMORY_BUDGET": env.int("RESPECT_MODEL_MEMORY_BUDGET", default=0),
    # Bytes of attention keys and values a live worker keeps of games' last prompts, so a turn
    # runs the model over its new tokens only (docs/serving.md); 0 turns the cache off.
    "PREFIX_CACHE_BYTES": env.int("RESPECT_PREFIX_CACHE_BYTES", default=4 * 2**30),
    "PRELOAD": env.list("RESPECT_MODEL_PRELOAD", default=[]),
}

# Learning between rounds (models_svc.training): where runs write checkpoints and adapters, the
# pretrained checkpoint runs start from when a system's policy names none (hf:PATH), and
# overrides of the paper's default hyperparameters for every run (a JSON object, e.g.
# {"epochs": 10, "seeds": 1}; see models_svc.training.config).
TRAINING_DIR = Path(env.str("RESPECT_TRAINING_DIR", default=str(VAR_DIR / "training")))
TRAINING_BASE = env.str("RESPECT_TRAINING_BASE", default="")
# Directories under which checkpoints may be registered or named in a decoding or training form
# (comma-separated; default: the var/ directory). Where training writes its adapters is one too.
MODEL_ROOTS = [
    *env.list("RESPECT_MODEL_ROOTS", default=[str(VAR_DIR)]),
    str(TRAINING_DIR),
]
TRAINING = env.json("RESPECT_TRAINING", default={})
# The preset the launch forms choose by default (models_svc.training.config.PRESETS): the
# paper's settings, or "tiny" (1 epoch, 1 seed, settings that teach the tiny checkpoint), which
# run.py demo picks on a machine without an NVIDIA GPU.
TRAINING_PRESET = env.str("RESPECT_TRAINING_PRESET", default="paper")
# A running training run whose worker has been silent this long is stale: it can be resumed
# from its page (model loading and one optimiser step or epoch save must fit well inside it).
TRAINING_STALE_SECONDS = env.int("RESPECT_TRAINING_STALE_SECONDS", default=1800)

# Every record the platform writes has platform worker ids and worker tokens redacted
# (config.log_redaction), runserver's request log included. Servers' own access logs (Daphne,
# Uvicorn) bypass it: turn them off and keep the proxy's (README, "Production").
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "one_line_4xx": {"()": "config.log_filters.ClientErrorWithoutTraceback"},
        "redact_crowd_ids": {"()": "config.log_redaction.RedactCrowdIds"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["redact_crowd_ids", "one_line_4xx"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.request": {"filters": ["one_line_4xx"]},
        # A request for a host not in ALLOWED_HOSTS (a scanner) answers 400: one line, no trace.
        "django.security.DisallowedHost": {"filters": ["one_line_4xx"]},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# Annotation and crowd platforms (annotation app). Worker-facing pages live inside the MTurk
# iframe, so they allow these frame ancestors; MTurk calls use the endpoint of the task's mode.
ANNOTATION_MTURK_ENDPOINTS = {
    "sandbox": "https://mturk-requester-sandbox.us-east-1.amazonaws.com",
    "production": "https://mturk-requester.us-east-1.amazonaws.com",
}
ANNOTATION_MTURK_SUBMIT_HOSTS = {
    "sandbox": "https://workersandbox.mturk.com",
    "production": "https://www.mturk.com",
}
ANNOTATION_PROLIFIC_COMPLETION_URL = env.str(
    "PROLIFIC_COMPLETION_URL", default="https://app.prolific.com/submissions/complete?cc={code}"
)
ANNOTATION_MAX_TEXT_CHARS = 1000
ANNOTATION_DEFAULT_CONSENT = (
    "You are invited to take part in a research study on how people give instructions. You will "
    "read recorded games and answer questions about them. Your platform id is stored only as a "
    "keyed hash; the encrypted id is used for payment only. Your answers may be published without "
    "any identifier. There are no known risks. You may stop at any time."
)

# Live play: Celery task modules outside ``<app>.tasks``, and the deadline backstop tasks
# (one ``default``-queue task per turn phase; see games.live.notify).
CELERY_INCLUDE = ["games.live.tasks"]
PLAY_DEADLINE_TASKS = env.bool("PLAY_DEADLINE_TASKS", default=True)
# The currency of every amount of pay (Study pay fields, earnings), shown before each amount
# (read without django-environ, which takes a leading "$" for a reference to another variable).
PLAY_CURRENCY_SYMBOL = os.environ.get("PLAY_CURRENCY_SYMBOL", "$")
# The local entry (/play/lobby/<round>/local/) logs in a made-up worker without consent or quiz:
# the demo only. Off, lobbies admit only participants of the round's crowd task.
PLAY_LOCAL_ENTRY = env.bool("PLAY_LOCAL_ENTRY", default=DEBUG)
# Open sockets (game and lobby pages together) one player may hold in one web process.
PLAY_MAX_SOCKETS_PER_PLAYER = env.int("PLAY_MAX_SOCKETS_PER_PLAYER", default=4)
# Lobby arrivals (page loads and socket handshakes) one web process takes at a time; more are
# answered at once with "try again in a few seconds" (config.arrivals).
PLAY_ARRIVALS_IN_PROGRESS = env.int("PLAY_ARRIVALS_IN_PROGRESS", default=24)
# HTTP requests one web process runs at once (each in a thread of its own, contending with the
# event loop that carries the moves); the others wait their turn (config.page_threads).
WEB_PAGES_AT_ONCE = env.int("WEB_PAGES_AT_ONCE", default=4)

# The zero-setup demo's Celery folders (filesystem broker and result backend) must exist before a
# worker starts.
if CELERY_BROKER_URL == "filesystem://":
    for _option, _folder in CELERY_BROKER_TRANSPORT_OPTIONS.items():
        if _option.endswith("_folder") or _option.startswith("data_folder"):
            Path(str(_folder)).mkdir(parents=True, exist_ok=True)
if CELERY_RESULT_BACKEND.startswith("file://"):
    Path(CELERY_RESULT_BACKEND.removeprefix("file://")).mkdir(parents=True, exist_ok=True)

# A PostgreSQL connection pool per web process (Django's native pool, psycopg_pool), for ASGI
# servers, where persistent connections would pile up one per thread: DATABASE_POOL=true.
if env.bool("DATABASE_POOL", default=False) and "postgresql" in DATABASES["default"]["ENGINE"]:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=10),
    }
