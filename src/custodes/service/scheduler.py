"""The scheduler: the due work of a running deployment, done on time.

``custodes serve`` runs one :class:`Scheduler` per process. Every ``interval`` seconds it runs
:func:`~custodes.service.execution.run_due` (notices whose gag has ended, restrictions whose
time is up, holds whose clock ran out) and
:func:`~custodes.service.clocks.check_clocks` (one ``clock.overdue`` alert per missed
deadline). Both are safe to run in several processes at once and after a restart: the work
they do is claimed in the database, so nothing happens twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from custodes.service import Services
from custodes.service.clocks import check_clocks
from custodes.service.execution import run_due

log = logging.getLogger(__name__)

Task = Callable[[Services], object]
DEFAULT_TASKS: tuple[Task, ...] = (run_due, check_clocks)


class Scheduler:
    """Runs ``tasks`` now and then every ``interval`` seconds until stopped."""

    def __init__(
        self, services: Services, interval: float = 60.0, tasks: Sequence[Task] = DEFAULT_TASKS
    ) -> None:
        self.services = services
        self.interval = interval
        self.tasks = tuple(tasks)
        self.runs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        for task in self.tasks:
            try:
                task(self.services)
            except Exception:  # one failing task must not stop the others or the next round
                log.exception("scheduled task failed task=%s", getattr(task, "__name__", task))
        self.runs += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name="custodes-scheduler", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=30)
            self._thread = None
