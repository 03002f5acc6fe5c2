"""Review finding on the start-up work's lazy imports (main, syndicate/cli/lazy.py
`lazy_module`, used by cli/send.py, run.py, worker.py, common.py for `syndicate.settings` …).

`importlib.util.LazyLoader` is not thread-safe before Python 3.12.3 (CPython gh-114763): the
first attribute read turns the module into a plain module *before* running its code, so a second
thread reading an attribute meanwhile finds it missing (AttributeError) or sees it half-made.
This machine runs Python 3.11 (pyproject allows it). A lazily deferred module whose first use
happens in two threads at once (the SMTP connection pool, the daemon's job and heartbeat
executors, the web server's thread pool) fails for one of them.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from syndicate.cli.lazy import lazy_module

SLOW_MODULE = """
import time
time.sleep(0.3)  # a module with real imports to do (SQLAlchemy, lxml, premailer …)
def answer():
    return 42
"""


def test_a_lazy_module_first_used_by_two_threads_works_in_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "review_slow_module.py").write_text(SLOW_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "review_slow_module", raising=False)
    module = lazy_module("review_slow_module")
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def first_use() -> None:
        start.wait()
        try:
            assert module.answer() == 42
        except BaseException as exc:  # what the thread would die of
            failures.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monkeypatch.delitem(sys.modules, "review_slow_module", raising=False)
    assert failures == [], f"Python {sys.version.split()[0]}: {failures!r}"
