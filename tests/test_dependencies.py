"""Every library the package imports is one it declares: a plain `pip install` of syndicate
must run every command (the daemon's LMTP listener once needed aiosmtpd, which only the test
extra brought, so `syndicate run` died on a fresh install while the tests passed)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Declared in an extra on purpose: imported only where that extra is in use.
EXTRAS = {"psycopg": "postgres"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def imported_top_level() -> dict[str, str]:
    """Each third-party top-level module imported under syndicate/, with one file that does."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "syndicate").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "syndicate" and top not in sys.stdlib_module_names:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_library_is_a_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_name(r) for r in project["dependencies"]}
    extras = {
        extra: {_name(r) for r in requirements}
        for extra, requirements in project["optional-dependencies"].items()
    }
    providers = metadata.packages_distributions()
    missing = []
    for module, where in imported_top_level().items():
        distributions = {d.lower().replace("_", "-") for d in providers.get(module, [module])}
        extra = EXTRAS.get(module)
        allowed = declared | (extras[extra] if extra else set())
        if not distributions & allowed:
            missing.append(f"{module} ({where}; from {sorted(distributions)})")
    assert not missing, f"imported but not in [project] dependencies: {missing}"
    assert "aiosmtpd" in imported_top_level()  # the check sees the listener's import
