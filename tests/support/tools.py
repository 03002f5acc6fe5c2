"""The one rule for tests that need a real tool: under CI a missing tool fails, elsewhere skips.

.ci/run installs every tool with apt-get and every module with pip, so under CI (CI set to
1/true/yes) a missing one is a broken install, never a reason to skip.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(message: str) -> None:
    """Fail under CI, skip elsewhere, saying what is missing and how to get it."""
    if under_ci():
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name: str) -> str:
    """The tool's path (also found in /usr/sbin, where Debian puts daemons like dovecot)."""
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if path:
        return path
    missing(f"{name} is not installed; .ci/run installs it with apt-get")
    raise AssertionError("unreachable")


def require_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"the {name} package is not installed (pip install -e '.[test]')")
        raise
