"""Import everything a web process can import and report which heavy ML libraries came with it.

``python -m config.web_imports`` sets Django up, loads the URL conf, the ASGI and WSGI
applications and the admin, imports every module of the apps except the worker-only ones, and
prints a JSON list of the heavy libraries now in ``sys.modules`` (``[]`` is the contract: the
web install, without the ``ml`` extra, must serve every page). ``run.py check-base`` runs it in
an environment without the ``ml`` extra; ``tests/models_svc/test_web_imports.py`` runs it in the
full one.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys

APPS = ("games", "annotation", "evaluation", "models_svc", "config")
WORKER_ONLY = (
    "models_svc.backends",
    "models_svc.tiny_models",
    "models_svc.training.trainer",
    "models_svc.training.packing",
    "models_svc.training.objectives",
    "models_svc.training.components",
    "models_svc.training.probes",
    "models_svc.training.modelling",
    "models_svc.training.validation",
    "models_svc.training.checkpoint_io",
)
HEAVY = ("torch", "transformers", "open_clip", "peft", "accelerate", "torchvision")


def import_web_modules(also: tuple[str, ...] = ()) -> list[str]:
    """Import the web side (and the modules named in ``also``); the heavy libraries loaded."""
    import django

    django.setup()
    from django.contrib import admin
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (imports every urls module)
    importlib.import_module("config.asgi")
    importlib.import_module("config.wsgi")
    admin.autodiscover()
    for app in APPS:
        package = importlib.import_module(app)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{app}."):
            if ".migrations" in info.name or info.name.startswith(WORKER_ONLY):
                continue
            importlib.import_module(info.name)
    for name in (
        "models_svc.registry",
        "models_svc.lexicon",
        "models_svc.baselines",
        "models_svc.checkpoints",
        *also,
    ):
        importlib.import_module(name)
    return sorted(name for name in HEAVY if name in sys.modules)


if __name__ == "__main__":
    print(json.dumps(import_web_modules(tuple(sys.argv[1:]))))
