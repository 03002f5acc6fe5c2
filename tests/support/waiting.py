"""Waiting for something another thread or process does, polling briefly, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], *, timeout: float = 30, interval: float = 0.02, what: str = ""
) -> T:
    """The first truthy value of `condition()`; fails the test, naming `what`, at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        waited_for = what or condition
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {waited_for}"
        time.sleep(interval)


def became_true(condition: Callable[[], object], seconds: float = 60) -> bool:
    """Whether `condition()` turned truthy within `seconds` (the caller says what failed)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
