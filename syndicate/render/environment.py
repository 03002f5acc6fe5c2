"""The Jinja2 environment over the author's templates/ folder."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from syndicate.settings import packaged


def make_environment(templates: Path) -> Environment:
    """Autoescape HTML templates; fail on a misspelt variable instead of printing nothing."""
    env = Environment(
        loader=template_loader(templates),
        autoescape=select_autoescape(["html", "htm", "html.j2"], default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["longdate"] = _long_date
    return env


def template_loader(templates: Path) -> FileSystemLoader:
    """The author's templates first; any file they do not have comes from syndicate's own."""
    return FileSystemLoader([str(templates), str(packaged("templates"))])


def _long_date(value: datetime | None) -> str:
    if value is None:
        return ""
    return f"{value:%A, %B} {value.day}, {value.year}"
