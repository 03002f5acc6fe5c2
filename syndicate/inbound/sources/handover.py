"""`syndicate inbound receive` without a Python start's worth of libraries: when `syndicate run`
listens on its LMTP socket ([inbound] lmtp_socket), with the very settings the pipe would load
(settings_digest.py: the same file, unchanged, the same environment), the pipe hands the message
to it and prints its answer. Only the standard library is imported here (no Typer, pydantic,
SQLAlchemy): the settings file is read with tomllib for the three keys this needs.

Anything unexpected (no socket, nobody listening, a timeout, an answer we do not understand)
leaves the message to the in-process path, which files it itself. A message the daemon may
have filed before the failure is then "already recorded" (step seen): the fallback files the
very bytes that were handed over.
"""

from __future__ import annotations

import os
import re
import smtplib
import socket
import stat
import struct
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from syndicate import settings_digest
from syndicate.inbound.sources import stdin

# The defaults of settings/inbound.py and settings.DEFAULT_CONFIG, spelled out so that the
# settings models are not loaded; tests/test_inbound_lmtp.py checks that they agree.
DEFAULT_CONFIG = Path("settings.toml")
DEFAULT_SOCKET = "syndicate.lmtp"
DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_TIMEOUT = 30.0

# RCPT TO when the pipe was given no --recipient (LMTP needs one): the listener files the
# message with no envelope recipient, as the pipe does. An MTA always names a domain.
NO_RECIPIENT = "postmaster"
# The pipe's LHLO name: its messages are recorded as the pipe's (source "stdin"), an MTA's as
# "lmtp".
PIPE_NAME = "syndicate-pipe"
# The daemon files or answers for us only when its settings are ours (lmtp.py).
SETTINGS_VERB = "XSETTINGS"

_COUNTED_FLAGS = re.compile(r"-[vq]+")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_ENHANCED_CODE = re.compile(r"[245]\.\d{1,3}\.\d{1,3} ")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Request:
    config: Path
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class Target:
    socket: Path | None  # None: the listener is off
    max_bytes: int
    timeout: float


@dataclass(frozen=True)
class Read:
    """What was read from stdin, kept for the in-process path when the hand-over fails."""

    raw: bytes
    size: int


# Set once stdin was read here: the in-process `receive` files these bytes.
already_read: Read | None = None


def global_options(argv: list[str]) -> tuple[Path, list[str]] | None:
    """The settings file named by the global options (`-c`, `-q`, `-v`) as the Typer app reads
    them, and the words after them; None for an option this does not know (--help included)."""
    config, at = DEFAULT_CONFIG, 0
    while at < len(argv) and argv[at].startswith("-"):
        arg = argv[at]
        if arg in ("--config", "-c"):
            if at + 1 >= len(argv):
                return None
            config, at = Path(argv[at + 1]), at + 2
            continue
        if arg.startswith("--config="):
            config = Path(arg.removeprefix("--config="))
        elif arg.startswith("-c"):
            config = Path(arg[2:])
        elif arg not in ("--quiet", "--verbose") and not _COUNTED_FLAGS.fullmatch(arg):
            return None
        at += 1
    return config, argv[at:]


def parse_argv(argv: list[str]) -> Request | None:
    """`[global options] inbound receive [--recipient X]…`, as the Typer app reads it; None
    for anything else (another command, --help, an option this does not know)."""
    found = global_options(argv)
    if found is None or found[1][:2] != ["inbound", "receive"]:
        return None
    config, words = found
    rest, recipients, at = words[2:], [], 0
    while at < len(rest):
        arg = rest[at]
        if arg in ("--recipient", "-r"):
            if at + 1 >= len(rest):
                return None
            recipients.append(rest[at + 1])
            at += 2
            continue
        if arg.startswith("--recipient="):
            recipients.append(arg.removeprefix("--recipient="))
        elif arg.startswith("-r") and len(arg) > 2:
            recipients.append(arg[2:])
        else:
            return None
        at += 1
    if any(_CONTROL.search(recipient) for recipient in recipients):
        return None  # not for an LMTP command line: the in-process path files it as given
    return Request(config, tuple(recipients))


def target(config: Path) -> Target | None:
    """The socket, size limit and timeout from the settings file; None when it cannot be read
    or a value has the wrong type (the in-process path then says what is wrong)."""
    try:
        text = config.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("utf-8")
        inbound = tomllib.loads(text).get("inbound", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    if not isinstance(inbound, dict):
        return None
    socket = inbound.get("lmtp_socket", DEFAULT_SOCKET)
    max_bytes = inbound.get("max_message_bytes", DEFAULT_MAX_BYTES)
    timeout = inbound.get("lmtp_timeout_seconds", DEFAULT_TIMEOUT)
    if not (
        isinstance(socket, str)
        and type(max_bytes) is int
        and max_bytes > 0
        and type(timeout) in (int, float)
        and timeout > 0
    ):
        return None
    path = Path(socket).expanduser()  # as Settings.path() reads it
    if socket and not path.is_absolute():
        path = config.resolve().parent / path
    return Target(path if socket else None, max_bytes, float(timeout))


def trusted(socket: Path) -> bool:
    """Whether the socket may be the daemon's: a socket of our own user, in a folder not
    everyone may write to (the rule the listener binds by). Anything else may be a stranger's,
    who would answer 250 and keep the message."""
    try:
        found, folder = os.lstat(socket), os.stat(socket.parent)
    except OSError:
        return False
    return (
        stat.S_ISSOCK(found.st_mode)
        and found.st_uid == os.geteuid()
        and not folder.st_mode & stat.S_IWOTH
    )


def our_user_at(peer: socket.socket | None) -> bool:
    """Whether the process at the other end of a Unix socket connection runs as our user, as
    the kernel says (SO_PEERCRED): whatever the socket file's owner or mode."""
    if peer is None:
        return False
    try:
        credentials = peer.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    except OSError:
        return False
    _pid, uid, _gid = struct.unpack("3i", credentials)
    return uid == os.geteuid()


def answered_by_us(client: smtplib.SMTP) -> bool:
    """Whether the daemon we reached runs as our user, whoever may have swapped the socket
    file since `trusted` looked."""
    return our_user_at(client.sock)


def greet(client: smtplib.LMTP, digest: str) -> None:
    """LHLO, once the daemon proved to run as our user, then XSETTINGS: the daemon says
    whether its settings are ours (`digest`, settings_digest.py). Raises SMTPException if not."""
    if not answered_by_us(client):
        raise smtplib.SMTPException("the socket is not served by our user")
    client.ehlo()  # LHLO
    code, text = client.docmd(SETTINGS_VERB, digest)
    if code != 250:
        raise smtplib.SMTPResponseException(code, text)


def wire_form(raw: bytes) -> bytes:
    """The message as LMTP carries it: CRLF line ends, ending in one."""
    wired = _BARE_LF.sub(b"\r\n", raw)
    return wired if wired.endswith(b"\r\n") else wired + b"\r\n"


@dataclass(frozen=True)
class Answer:
    code: int
    text: str


class MaybeFiled(Exception):
    """The hand-over failed once the message's bytes were on their way: the daemon may have
    filed them."""


def deliver(
    socket: Path, wired: bytes, recipients: tuple[str, ...], timeout: float, digest: str
) -> Answer:
    """Hand one message to the listener, if its settings are ours (`digest`); its answer to
    DATA (one per recipient, the same for all: the message is filed once). Raises OSError or
    SMTPException when it cannot before DATA, MaybeFiled after."""
    with smtplib.LMTP(str(socket), local_hostname=PIPE_NAME, timeout=timeout) as client:
        greet(client, digest)
        envelope = recipients or (NO_RECIPIENT,)
        for code, text in (client.mail(""), *(client.rcpt(r) for r in envelope)):
            if code != 250:
                raise smtplib.SMTPResponseException(code, text)
        try:
            code, text = client.data(wired)
            for _ in envelope[1:]:
                client.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            raise MaybeFiled(exc) from exc
    return Answer(code, text.decode("utf-8", "replace"))


def main(argv: list[str], stream: BinaryIO, err: TextIO) -> int | None:
    """The exit status when the message was handed over (or is not an email: 65); None to go
    on with the Typer app (another command, or the in-process path)."""
    global already_read
    already_read = None
    request = parse_argv(argv)
    if request is None:
        return None
    found = target(request.config)
    if found is None or found.socket is None or not trusted(found.socket):
        return None  # the in-process path reads stdin with the settings it validates
    raw, size = stdin.read_bounded(stream, found.max_bytes)
    already_read = Read(raw, size)
    if stdin.not_a_message(raw):
        _say(err, stdin.NOT_AN_EMAIL)
        return stdin.EX_DATAERR
    if size > found.max_bytes:
        return None  # too large: the in-process path records it as refused (headers only)
    digest = settings_digest.of(request.config)
    if digest is None:
        return None
    wired = wire_form(raw)
    try:
        answer = deliver(found.socket, wired, request.recipients, found.timeout, digest)
    except MaybeFiled:
        answer = Answer(0, "")
    except (OSError, smtplib.SMTPException, UnicodeError, ValueError):
        return None  # the daemon never had it: the in-process path files the bytes as read
    text = _ENHANCED_CODE.sub("", answer.text, count=1)
    if answer.code == 250:
        _say(err, text)
        return stdin.EX_OK
    if 400 <= answer.code < 500 and answer.code != 421:
        _say(err, f"syndicate inbound receive: {text}")
        return stdin.EX_TEMPFAIL
    # The daemon may have filed it: the same bytes are then "already recorded".
    already_read = Read(wired, len(wired))
    return None


def _say(err: TextIO, line: str) -> None:
    err.write(line + "\n")
    err.flush()
