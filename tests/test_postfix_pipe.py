"""The README's Postfix set-up, followed by a real Postfix (a private instance on loopback):
`recipient_delimiter = +`, an alias piping to `syndicate inbound receive`, run by local(8) as
`nobody` with none of our environment, the key and database URL in files. A token-only reply is
filed as a comment; exit 75 defers the message until `postqueue -f`; a message too large is
recorded with exit 0, so Postfix bounces nothing to its (forgeable) envelope sender."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.inbound import KEY, edit, fixture, replies, sent_project, set_url_file
from tests.support.pipe import PIPE_USER, as_pipe_user, pipe_interpreter
from tests.support.postfix import Postfix, start_postfix
from tests.support.postgres import database_url_of
from tests.support.tools import missing, require_tool

# default_privs for the root-owned alias file: any user but the pipe user (Debian has 'daemon').
OTHER_USER = "daemon"

DOMAIN = "notes.example.com"


def require_postfix() -> None:
    require_tool("postfix")
    require_tool("postalias")
    require_tool("postmap")
    if os.geteuid() != 0:
        missing("a private Postfix instance needs root (it runs its daemons as 'postfix')")


def prepared_project(top: Path) -> tuple[Path, str]:
    """The project as the README sets it up for a pipe: secrets in files, owned by the pipe
    user with the database and outbox/; returns it and the command line."""
    project = sent_project(top / "project")
    secrets = project / "secrets"
    secrets.mkdir()
    (secrets / "secret.key").write_text(KEY + "\n")
    (secrets / "database-url").write_text(database_url_of(project) + "\n")
    for name in ("secret.key", "database-url"):
        (secrets / name).chmod(0o600)
    config = project / "settings.toml"
    edit(config, 'key_file = ""', 'key_file = "secrets/secret.key"')
    set_url_file(config, "secrets/database-url")
    edit(config, "max_message_bytes = 10000000", "max_message_bytes = 20000")
    mail = top / "mail"
    mail.mkdir()
    as_pipe_user(project, mail)
    return project, f"{pipe_interpreter()} -m syndicate --config {config} inbound receive"


@pytest.fixture
def top() -> Iterator[Path]:
    require_postfix()
    folder = Path(tempfile.mkdtemp(prefix="syndicate-postfix-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for config in folder.glob("postfix/config"):
            Postfix(config.parent, 0).stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def setup(top: Path) -> tuple[Path, Postfix]:
    """The alias route: an alias file owned by the pipe user pipes to the command, which local(8)
    runs as that owner; default_privs (the user for root-owned alias files) is someone else,
    who could read neither the secrets nor the database."""
    project, command = prepared_project(top)
    postfix = start_postfix(
        top / "postfix",
        {"mydestination": DOMAIN, "recipient_delimiter": "+", "default_privs": OTHER_USER},
        "postmaster: root\n",
        owned_aliases=(PIPE_USER, f'replies: "|{command}"\nsender: {top}/mail/sender.mbox\n'),
    )
    return project, postfix


def token_only(name: str) -> tuple[bytes, str]:
    # Delivered-To too: Postfix takes its own header, already there, for a loop.
    raw = re.sub(rb"(?m)^(In-Reply-To|References|Delivered-To):.*\r?\n", b"", fixture(name))
    token = re.search(rb"replies\+[^@\s>]+@" + DOMAIN.encode(), raw)
    assert token
    return raw, token.group().decode()


def test_postfix_delivers_defers_on_75_and_never_bounces_a_recorded_message(setup) -> None:
    project, postfix = setup
    sender = f"sender@{DOMAIN}"

    raw, token = token_only("gmail_en.eml")
    postfix.send(raw, sender, token)
    assert postfix.wait_for(lambda: len(replies(project)) == 1), postfix.log
    [reply] = replies(project)
    assert (reply["kind"], reply["recipient"]) == ("comment", 1), reply

    # 75: the database URL cannot be read; Postfix keeps the message, then delivers it.
    url_file = project / "secrets" / "database-url"
    url_file.chmod(0o000)
    raw, token = token_only("apple_en.eml")
    postfix.send(raw, sender, token)
    assert postfix.wait_for(lambda: "status=deferred" in postfix.log), postfix.log
    assert "temporary failure" in postfix.log
    assert len(replies(project)) == 1
    url_file.chmod(0o600)
    postfix.flush()
    assert postfix.wait_for(lambda: len(replies(project)) == 2), postfix.log
    assert replies(project)[0]["kind"] == "comment"

    # Too large: recorded (exit 0), so Postfix delivers it and bounces nothing to the envelope
    # sender, which anyone can forge.
    raw, token = token_only("thunderbird_en.eml")
    big = raw + b"\n" + (b"x" * 70 + b"\n") * 400
    assert len(big) > 20_000
    postfix.send(big, sender, token)
    assert postfix.wait_for(lambda: len(replies(project)) == 3), postfix.log
    assert replies(project)[0]["kind"] == "refused"
    assert postfix.wait_for(lambda: postfix.log.count("status=sent") >= 3), postfix.log
    assert "bounced" not in postfix.log
    assert not (project.parent / "mail" / "sender.mbox").exists()


def test_the_master_cf_pipe_route_passes_the_envelope_recipient(top: Path) -> None:
    """The master.cf route: a pipe service, transport_maps (postmap), the user of its own; no
    Delivered-To without flags=D, so the token comes from --recipient ${original_recipient}."""
    project, command = prepared_project(top)
    transport = top / "postfix-transport"
    transport.write_text(f"replies@{DOMAIN} syndicate:\n")
    subprocess.run(["postmap", f"hash:{transport}"], check=True, timeout=30)
    postfix = start_postfix(
        top / "postfix",
        {
            "mydestination": DOMAIN,
            "recipient_delimiter": "+",
            "transport_maps": f"hash:{transport}",
            "local_recipient_maps": f"proxy:unix:passwd.byname $alias_maps hash:{transport}",
        },
        f"sender: {top}/mail/sender.mbox\n",
        master_extra=(
            "syndicate unix - n n - - pipe\n"
            f"  flags=R user={PIPE_USER} argv={command} --recipient ${{original_recipient}}\n"
        ),
    )
    raw, token = token_only("gmail_en.eml")
    # Only the envelope names the reader: the To header has the bare reply address.
    raw = raw.replace(token.encode(), f"replies@{DOMAIN}".encode())
    postfix.send(raw, f"sender@{DOMAIN}", token)
    assert postfix.wait_for(lambda: len(replies(project)) == 1), postfix.log
    [reply] = replies(project)
    assert (reply["kind"], reply["recipient"]) == ("comment", 1), reply
    assert postfix.wait_for(lambda: "relay=syndicate" in postfix.log), postfix.log
