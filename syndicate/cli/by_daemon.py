"""`syndicate status` answered by the running daemon, without a Python start's worth of
libraries: the daemon has SQLAlchemy, the settings and the templates loaded already, so it
renders the status for this terminal and sends the text back over its socket ([inbound]
lmtp_socket, the `XSTATUS` command). Only the standard library and rich's console (to see this
terminal as the in-process command would) are imported here.

The daemon answers only when it would say what the command run here would: its settings are
the same file, unchanged since it read them, with the same environment (`settings_digest`),
and the asker runs as the daemon's own user. Anything else (no daemon, another settings file,
an answer we do not understand) leaves the command to the Typer app, which answers itself.
"""

from __future__ import annotations

import base64
import json
import smtplib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from syndicate import settings_digest
from syndicate.inbound.sources import handover

if TYPE_CHECKING:
    from rich.console import Console

VERB = "XSTATUS"


@dataclass(frozen=True)
class Request:
    config: Path
    as_json: bool


def parse_argv(argv: list[str]) -> Request | None:
    """`[global options] status [--json]`; None for anything else (--help included)."""
    found = handover.global_options(argv)
    if found is None:
        return None
    config, words = found
    if words == ["status"]:
        return Request(config, as_json=False)
    if words == ["status", "--json"]:
        return Request(config, as_json=True)
    return None


def terminal(console: Console) -> list[Any]:
    """What rich decided about one of our streams, for the daemon's console to decide alike:
    [is a terminal, width, height, colour system, no colour]."""
    return [
        console.is_terminal,
        console.width,
        console.height,
        console.color_system,
        console.no_color,
    ]


def ask(socket: Path, digest: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send the request, if the daemon's settings are ours (`digest`), and return its answer;
    OSError, SMTPException or ValueError if it gave none we understand."""
    # Compact: an LMTP command line holds 512 bytes (aiosmtpd's limit).
    packed = json.dumps(request, separators=(",", ":")).encode()
    argument = base64.b64encode(packed).decode("ascii")
    with smtplib.LMTP(str(socket), local_hostname=handover.PIPE_NAME, timeout=timeout) as client:
        handover.greet(client, digest)
        code, text = client.docmd(VERB, argument)
    if code != 250:
        raise smtplib.SMTPResponseException(code, text)
    answer = json.loads(base64.b64decode(b"".join(text.split(b"\n")), validate=True))
    if not (
        isinstance(answer, dict)
        and isinstance(answer.get("stdout"), str)
        and isinstance(answer.get("stderr"), str)
        and type(answer.get("code")) is int
    ):
        raise ValueError("an answer of the wrong shape")
    return answer


def main(argv: list[str], out: TextIO, err: TextIO) -> int | None:
    """The exit status when the daemon answered; None to go on with the Typer app."""
    request = parse_argv(argv)
    if request is None:
        return None
    found = handover.target(request.config)
    if found is None or found.socket is None or not handover.trusted(found.socket):
        return None
    digest = settings_digest.of(request.config)
    if digest is None:
        return None
    from rich.console import Console  # as cli.common makes its consoles

    asked = {
        "json": request.as_json,
        "out": terminal(Console(soft_wrap=True)),
        "err": terminal(Console(stderr=True, soft_wrap=True)),
    }
    try:
        answer = ask(found.socket, digest, asked, found.timeout)
    except (OSError, smtplib.SMTPException, ValueError, UnicodeError):
        return None
    try:  # what this terminal cannot show, the in-process command shows its own way
        for stream, text in ((out, answer["stdout"]), (err, answer["stderr"])):
            text.encode(stream.encoding or "utf-8")
    except (UnicodeError, LookupError):
        return None
    out.write(answer["stdout"])
    out.flush()
    err.write(answer["stderr"])
    err.flush()
    return int(answer["code"])
