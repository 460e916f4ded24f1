"""The daemon's HTTP side: `/health`, the plugins' routes (the Plex webhook), the dashboard
and the REST API (FastAPI, Jinja2 templates, uvicorn in a thread).

It needs the `web` extra. Importing this package without it raises ImportError with the
command that installs it, so the daemon can log that and run on without a web server.
"""

from __future__ import annotations

import importlib.util
import inspect

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
    from fastapi import FastAPI

    # Older FastAPI releases accept `max_body_size` and silently ignore it; webhook bodies
    # are untrusted, so a FastAPI without the limit is refused rather than run unbounded.
    if "max_body_size" not in inspect.signature(FastAPI).parameters:
        raise ImportError(
            "genred's web server needs a FastAPI that limits request bodies (max_body_size): "
            "pip install -U 'genred[web]' 'fastapi>=0.165'",
            name="fastapi",
        )


_check_web_extra()

from .app import create_app  # noqa: E402
from .server import WebServer  # noqa: E402

__all__ = ["INSTALL_HINT", "WebServer", "create_app"]
