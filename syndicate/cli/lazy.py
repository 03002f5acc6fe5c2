"""Modules imported on first use, so that `syndicate --help` and the MTA pipe do not pay for
SQLAlchemy, premailer, python-docx, feedparser and lxml they never touch (see bench/startup.py).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """The module `name`, loaded when one of its attributes is first read or set.

    It is the very module object a plain import gives (LazyLoader turns it into the real one in
    place), so identity, monkeypatching and `from syndicate import settings` elsewhere all behave.
    Only for modules whose parent package is cheap to import: finding the spec imports it.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:
        # What the import system does for a submodule: `import syndicate.settings` then
        # `syndicate.settings.load` must find it.
        setattr(sys.modules[parent], child, module)
    return module
