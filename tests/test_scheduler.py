"""The scheduler runs the due work on time and keeps going when a task fails."""

from __future__ import annotations

import threading
from pathlib import Path

from custodes.service import Services
from custodes.service.clocks import check_clocks
from custodes.service.execution import run_due
from custodes.service.scheduler import DEFAULT_TASKS, Scheduler


def test_default_tasks_are_the_due_work_and_the_clocks() -> None:
    assert (run_due, check_clocks) == DEFAULT_TASKS


def test_scheduler_repeats_and_survives_a_failing_task(tmp_path: Path) -> None:
    calls: list[str] = []
    three = threading.Event()

    def failing(_: Services) -> None:
        calls.append("failing")
        raise RuntimeError("the platform is down")

    def counting(_: Services) -> None:
        calls.append("counting")
        if calls.count("counting") >= 3:
            three.set()

    services = object.__new__(Services)  # the tasks above never look at it
    scheduler = Scheduler(services, interval=0.01, tasks=(failing, counting))
    scheduler.start()
    try:
        assert three.wait(10), "the scheduler stopped after a failing task"
    finally:
        scheduler.stop()
    assert scheduler.runs >= 3
    assert calls[:2] == ["failing", "counting"]
    runs = scheduler.runs
    scheduler.run_once()
    assert scheduler.runs == runs + 1
