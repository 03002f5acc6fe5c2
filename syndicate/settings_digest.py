"""A digest of everything a command's settings are made of: the settings file (which file, and
which version of it), the environment variables settings read, and the files they name.

The daemon records it when it loads its settings; a command that asks the daemon to act for it
(`syndicate status`, cli/by_daemon.py; the pipe, inbound/sources/handover.py) sends its own, and
the daemon acts only when the two are equal, that is when the command run in-process would have
loaded the same settings.
Standard library only: the asking side must start without pydantic.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# Read by the settings whatever the file says (their defaults), or by the database's and the
# crash journal's location (HOME: `~` in a path).
ALWAYS_READ = ("HOME", "SENDGRID_API_KEY", "TZ", "XDG_STATE_HOME")


def of(config: Path, environ: Mapping[str, str] | None = None) -> str | None:
    """The digest for the settings file `config` and `environ` (this process's environment by
    default); None when the file cannot be read."""
    environ = os.environ if environ is None else environ
    path = Path(config).expanduser()
    try:
        found = path.stat()  # before the read: a file changed in between cannot match later
        raw = tomllib.loads(path.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    named = {value for key, value in _strings(raw) if key.endswith("_env")}
    names = sorted({n for n in environ if n.startswith("SYNDICATE_")} | named | set(ALWAYS_READ))
    folder = path.resolve().parent
    files = sorted(value for key, value in _strings(raw) if key.endswith("_file") and value)
    parts = {
        "code": _version(Path(__file__).resolve().parent),  # an upgrade since the daemon started
        "config": [str(path.resolve()), found.st_dev, found.st_ino, found.st_mtime_ns],
        "size": found.st_size,
        "environ": [[name, environ.get(name)] for name in names],
        "files": [[name, _version(folder / Path(name).expanduser())] for name in files],
    }
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _strings(table: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in table.items():
        if isinstance(value, Mapping):
            yield from _strings(value)
        elif isinstance(value, str):
            yield key, value


def _version(path: Path) -> list[int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return [found.st_dev, found.st_ino, found.st_mtime_ns, found.st_size]
