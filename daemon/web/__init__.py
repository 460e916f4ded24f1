"""The daemon's HTTP side: `/health`, the plugins' routes (the Plex webhook), the dashboard
and the REST API (FastAPI, Jinja2 templates, uvicorn in a thread).

It needs the `web` extra. Importing this package without it raises ImportError with the
command that installs it, so the daemon can log that and run on without a web server.
"""

from __future__ import annotations

import importlib.util

INSTALL_HINT = "pip install 'genred[web]'"


def _check_web_extra() -> None:
    for module, alternatives in (
        ("fastapi", ()),
        ("uvicorn", ()),
        ("python_multipart", ("multipart",)),  # python-multipart's old import name
        ("jinja2", ()),  # the dashboard's templates
    ):
        if not any(importlib.util.find_spec(name) for name in (module, *alternatives)):
            raise ImportError(
                f"genred's web server needs the `web` extra ({module} is not installed): "
                f"{INSTALL_HINT}",
                name=module,
            )
    if importlib.util.find_spec("starlette.middleware.body_limit") is None:
        # Webhook and API bodies are untrusted: a Starlette without the body limit is
        # refused rather than run unbounded.
        raise ImportError(
            "genred's web server needs a Starlette that limits request bodies: "
            "pip install -U 'genred[web]' 'fastapi>=0.165'",
            name="starlette",
        )


_check_web_extra()

from .app import create_app  # noqa: E402
from .server import WebServer  # noqa: E402

__all__ = ["INSTALL_HINT", "WebServer", "create_app"]
