"""What the dashboard's pages and API need from the daemon, in one object.

The service builds it (`genred.service`); tests build one over a store of their own. The
web package never imports the service: jobs are started through the small `Jobs`
protocol (the daemon's Worker), and everything else is read from the store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from genred.config import Config
from genred.progress import LiveProgress
from genred.store.stats import Overview, overview

from .auth import Auth, load_key
from .cache import Counts, Fresh, Refresher
from .db import Database


class Jobs(Protocol):
    """The daemon's side of starting jobs (`genred.worker.Worker`)."""

    live: LiveProgress

    def start(self, stage: str, trigger: str = "web", timeout: float = 10.0) -> int:
        """Run `stage` now; its run id. StageBusy when it runs already."""
        ...


@dataclass
class WebContext:
    """The running config (`config()`, read at each request: a reload applies at once),
    the jobs, and what the app keeps between requests."""

    config: Callable[[], Config]
    jobs: Jobs | None = None
    corrections: Callable[[], None] | None = None  # overrides changed: decide + write back soon
    status: Callable[[], dict[str, Any]] | None = None  # the daemon's `state()`
    plugins: Callable[[], Any] | None = None  # the daemon's LoadedPlugins
    config_path: Path | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        config = self.config()
        self.db = Database(config.db_path)
        self.stats: Fresh[Overview] = Fresh(self.db, self._overview)
        self.counts = Counts(self.db)
        self.auth = Auth(lambda: self.config().web, load_key(config.data_dir))
        self.refresher = Refresher(self.stats, self.stop, self._busy)

    def start(self) -> WebContext:
        """Compute the figures now and keep them up to date (a thread, until `close`)."""
        threading.Thread(target=self.stats.get, name="genred-web-stats", daemon=True).start()
        self.refresher.start()
        return self

    def _busy(self) -> bool:
        return bool(self.live is not None and self.live.snapshot()[1])

    def _overview(self) -> Overview:
        with self.db.reading() as store:
            return overview(store)

    @property
    def live(self) -> LiveProgress | None:
        return self.jobs.live if self.jobs is not None else None

    def close(self) -> None:
        self.stop.set()
        self.db.close()
