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
