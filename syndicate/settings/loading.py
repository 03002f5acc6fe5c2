"""Reading settings.toml: one clear line naming the file (and the key) for every problem."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from syndicate.errors import SettingsError
from syndicate.settings.model import Settings

DEFAULT_CONFIG = Path("settings.toml")

# The package's own folder: syndicate/ (this file is syndicate/settings/loading.py).
_PACKAGE = Path(__file__).resolve().parent.parent


def packaged(name: str) -> Path:
    """A file or folder shipped with syndicate: templates, settings.toml, the example feed.

    An installed wheel carries them in `syndicate/_skeleton/` (copied there by setup.py); a
    checkout (editable install) reads them where they live in the source tree.
    """
    shipped = _PACKAGE / "_skeleton" / name
    return shipped if shipped.exists() else _PACKAGE.parent / name


def read_text(path: Path, what: str = "settings file") -> str:
    """A UTF-8 text file (a byte-order mark is accepted); any other encoding is one clear line."""
    if path.is_dir():
        raise SettingsError(f"{path}: is a folder; give the path of the {what} itself")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(
            f"{path}: {what} not found (pass --config PATH, run from the project folder, or "
            "make one with 'syndicate init FOLDER')"
        ) from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]:
        raise SettingsError(
            f"{path}: the {what} is saved as UTF-16; save it as UTF-8 (TOML files are UTF-8)"
        )
    try:
        return data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SettingsError(
            f"{path}: line {line}: the {what} is not UTF-8 (Latin-1 or Windows-1252?); "
            "save it as UTF-8 (TOML files are UTF-8)"
        ) from None


def load(path: Path = DEFAULT_CONFIG) -> Settings:
    """Read, parse and validate a settings file; every problem names the file and the key."""
    path = Path(path)
    try:
        raw = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    raw.pop("base_dir", None)
    try:
        settings = Settings(**raw, base_dir=path.resolve().parent)
    except ValidationError as exc:
        raise SettingsError(_describe(path, exc)) from None
    settings.hmac_key_from_env()  # a weak key is refused at start, not at the first send
    return settings


def _describe(path: Path, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against the documented settings.toml)"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif "input" in error and error["type"] not in ("value_error",):
            message = f"{message}, got {error['input']!r}"
        problems.append(f"{key}: {message}")
    return f"{path}: " + "; ".join(problems)
