"""Key-value facts about this installation: the token key, its fingerprints per entrance, and
the installation id."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pwd
import re
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from syndicate import tokens
from syndicate.db import times
from syndicate.db.schema import meta

log = logging.getLogger(__name__)


def get_meta(conn: Connection, key: str) -> str | None:
    return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar_one_or_none()


def made_once(engine: Engine, key: str, make: Callable[[], str]) -> str:
    """The value stored under `key`, or `make()`'s, stored now. Processes starting together
    all get the first one stored (insert-if-absent, then read), none a unique-key error."""
    with engine.begin() as conn:
        stored = get_meta(conn, key)
        if stored is not None:
            return stored
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            conn.execute(pg_insert(meta).values(key=key, value=make()).on_conflict_do_nothing())
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            conn.execute(sqlite_insert(meta).values(key=key, value=make()).on_conflict_do_nothing())
        stored = get_meta(conn, key)
    assert stored is not None
    return stored


def set_meta(conn: Connection, key: str, value: str) -> None:
    if get_meta(conn, key) is None:
        conn.execute(insert(meta).values(key=key, value=value))
    else:
        conn.execute(update(meta).where(meta.c.key == key).values(value=value))


def hmac_key(engine: Engine, from_env: bytes | None) -> bytes:
    """The token key: from the environment, else one generated once and kept in the database.

    Keeping a generated key lets the demo run with no secrets set while links stay valid across
    runs; setting the environment variable takes precedence.
    """
    if from_env:
        key = from_env
    else:
        key = made_once(engine, "generated_hmac_key", lambda: secrets.token_hex(32)).encode()
    _note_key_use(engine, key)
    return key


_KEY_USE_PREFIX = "key_used_by:"


_KEY_USE_REFRESH_SECONDS = 3600


def key_fingerprint(key: bytes) -> str:
    """A short public name for a key: equal keys, equal names; the key cannot be read back."""
    return hashlib.sha256(b"syndicate token key fingerprint\0" + key).hexdigest()[:12]


def entrance_name() -> str:
    """This process as a sysadmin would name it: "syndicate inbound receive as nobody"."""
    words: list[str] = []
    args = iter(sys.argv[1:])
    for arg in args:
        if arg in ("-c", "--config"):
            next(args, None)
        elif arg.startswith("-"):
            if words:
                break
        elif re.fullmatch(r"[a-z][a-z-]*", arg) and len(words) < 2:
            words.append(arg)
        else:
            break
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = f"uid {os.geteuid()}"
    return " ".join(["syndicate", *words]) + f" as {user}"


def _note_key_use(engine: Engine, key: bytes) -> None:
    name = (_KEY_USE_PREFIX + entrance_name())[:64]
    fingerprint, at = key_fingerprint(key), times.now()
    try:
        with engine.begin() as conn:
            raw = get_meta(conn, name)
            known = json.loads(raw) if raw else {}
            last = datetime.fromisoformat(known["last"]) if "last" in known else None
            if (
                known.get("fingerprint") == fingerprint
                and last is not None
                and (at - last).total_seconds() < _KEY_USE_REFRESH_SECONDS
            ):
                return
            first = known["first"] if known.get("fingerprint") == fingerprint else at.isoformat()
            value = {"fingerprint": fingerprint, "first": first, "last": at.isoformat()}
            set_meta(conn, name, json.dumps(value))
    except (SQLAlchemyError, ValueError, KeyError) as exc:  # a note, never a reason to fail
        log.warning("could not record which token key this entrance uses: %s", exc)


@dataclass(frozen=True)
class KeyUse:
    """Which token key (by fingerprint) an entrance used, first and last."""

    entrance: str
    fingerprint: str
    first: datetime
    last: datetime


def key_uses(conn: Connection, own_key: bytes | str | None = None) -> list[KeyUse]:
    """Each entrance's last recorded key, newest first; with `own_key`, this process too, as
    used now."""
    rows = conn.execute(
        select(meta.c.key, meta.c.value).where(meta.c.key.startswith(_KEY_USE_PREFIX))
    ).all()
    uses = []
    for name, raw in rows:
        try:
            value = json.loads(raw)
            uses.append(
                KeyUse(
                    entrance=name.removeprefix(_KEY_USE_PREFIX),
                    fingerprint=value["fingerprint"],
                    first=datetime.fromisoformat(value["first"]),
                    last=datetime.fromisoformat(value["last"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    if own_key:
        key = own_key.encode() if isinstance(own_key, str) else own_key
        at = times.now()
        own = KeyUse(entrance_name(), key_fingerprint(key), at, at)
        uses = [u for u in uses if u.entrance != own.entrance]
        uses.append(own)
    return sorted(uses, key=lambda use: use.last, reverse=True)


def key_mismatch(uses: list[KeyUse], within_days: float = 30) -> list[KeyUse]:
    """The entrances used within `within_days` of the newest use, when they disagree; else []."""
    if not uses:
        return []
    newest = uses[0].last
    recent = [u for u in uses if (newest - u.last).total_seconds() <= within_days * 86400]
    return recent if len({u.fingerprint for u in recent}) > 1 else []


def installation_id(engine: Engine) -> str:
    """This database's random installation id (made once): part of every Message-ID, so two
    databases never reuse one (Gmail silently drops a message whose Message-ID it has seen)."""
    return made_once(engine, "installation_id", tokens.new_installation_id)


def known_installation_id(conn: Connection) -> str:
    """The installation id if one was made, else "" (read-only: nothing of ours was sent)."""
    return get_meta(conn, "installation_id") or ""
