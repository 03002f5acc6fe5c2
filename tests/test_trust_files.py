"""Issue 11 (files and keys), issue 12 (half-written outbox files): what syndicate writes to disk
is its owner's alone, whatever the umask; a weak token key is refused; a long address or a
killed process leaves the outbox usable."""

from __future__ import annotations

import logging
import mailbox
import os
import signal
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from syndicate import db
from syndicate import settings as settings_module
from syndicate.cli import main
from syndicate.delivery.message import OutboundMessage
from syndicate.delivery.transports.outbox import OutboxTransport
from syndicate.inbound.sources import maildir
from syndicate.models import DeliveryState
from syndicate.runtime import Runtime
from syndicate.web.app import create_app
from tests.conftest import set_setting
from tests.support.delivery import note
from tests.support.inbound import fixture
from tests.support.web_client import outbox_messages
from tests.test_web import csrf_of

STRONG_KEY = "a-32-byte-key-for-the-file-tests!"
# 64 + 1 + 189 = 254 characters, the longest address SMTP allows.
LONGEST_ADDRESS = "r" * 64 + "@" + ".".join(["d" * 62, "e" * 62, "f" * 55, "example"])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def umask(value: int) -> Iterator[None]:
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


def outbound(email: str, delivery_id: int = 1) -> OutboundMessage:
    return note(email, delivery_id, subject="test")


def test_database_and_its_wal_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    database = tmp_path / "syndicate.db"
    with umask(0):
        engine = db.connect(f"sqlite:///{database}")
        key = db.meta.hmac_key(engine, None)  # the generated key now lives in the file
        with engine.connect() as conn:
            assert db.meta.get_meta(conn, "generated_hmac_key") == key.decode()
            files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
            assert all(f.exists() for f in files), "WAL mode keeps -wal and -shm while open"
            assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    engine.dispose()


def test_a_database_an_older_version_left_readable_is_narrowed(tmp_path: Path) -> None:
    database = tmp_path / "syndicate.db"
    db.connect(f"sqlite:///{database}").dispose()
    database.chmod(0o644)
    db.connect(f"sqlite:///{database}").dispose()
    assert mode(database) == 0o600


def test_outbox_folder_and_messages_are_private_whatever_the_umask(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    with umask(0), OutboxTransport(folder) as transport:
        [result] = transport.send_messages([outbound("reader@example.com")])
    assert result.state is DeliveryState.SENT
    assert mode(folder) == 0o700
    assert mode(Path(result.detail)) == 0o600


def test_processed_maildir_messages_are_private_whatever_the_umask(project: Path) -> None:
    settings = settings_module.load(project / "settings.toml")
    engine = db.connect(settings.database_url)
    box = mailbox.Maildir(project / "Maildir", create=True)
    box.add(fixture("stranger.eml"))
    with umask(0):
        [outcome] = maildir.poll(
            Runtime(settings, engine=engine, key=STRONG_KEY.encode()), project / "Maildir"
        )
    processed = project / "Maildir" / f".{settings.inbound.maildir_processed_folder}"
    [kept] = [p for sub in ("new", "cur") for p in (processed / sub).iterdir()]
    assert outcome.reply_id and len(box) == 0
    assert mode(kept) == 0o600
    assert mode(processed) == 0o700


@pytest.mark.parametrize("key", ["x", "k" * 31])
def test_a_secret_key_shorter_than_32_bytes_is_refused_with_one_line(
    project: Path, key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", key)
    monkeypatch.setattr(sys, "argv", ["syndicate", "-c", str(project / "settings.toml"), "status"])
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        with pytest.raises(SystemExit) as stopped:
            main()
    finally:  # the command configures logging for itself; leave the test process as it was
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
    assert stopped.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "SYNDICATE_SECRET_KEY" in lines[0] and "at least 32" in lines[0]


def test_a_32_byte_key_is_accepted(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", "k" * 32)
    settings = settings_module.load(project / "settings.toml")
    assert settings.hmac_key_from_env() == b"k" * 32


def test_the_longest_address_gets_a_bounded_file_name_of_its_own(tmp_path: Path) -> None:
    transport = OutboxTransport(tmp_path / "outbox")
    transport.open()
    twin = "s" + LONGEST_ADDRESS[1:]  # same length, different address
    results = transport.send_messages([outbound(LONGEST_ADDRESS, 1), outbound(twin, 2)])
    assert [r.state for r in results] == [DeliveryState.SENT, DeliveryState.SENT]
    names = [Path(r.detail).name for r in results]
    assert len(set(names)) == 2
    mailboxes = [name.removesuffix(".eml").split("-", 1)[1] for name in names]
    assert all(len(mailbox) <= 64 for mailbox in mailboxes), names
    assert [m[:4] for m in mailboxes] == ["rrrr", "srrr"], names


def test_the_web_form_answers_normally_for_the_longest_address(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", STRONG_KEY)
    set_setting(
        project / "settings.toml",
        'base_url = "https://notes.example.com/newsletter"',
        'base_url = "http://testserver"',
    )
    client = TestClient(create_app(Runtime(settings_module.load(project / "settings.toml"))))
    form = client.get("/subscribe")
    data = {"csrf": csrf_of(form.text), "email": LONGEST_ADDRESS, "name": "", "website": ""}
    answer = client.post("/subscribe", data=data)
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert len(outbox_messages(project, LONGEST_ADDRESS)) == 1


WRITER = """
import os, sys, time
from pathlib import Path
from syndicate.delivery.transports import outbox
from tests.support.delivery import note

os.replace = lambda *args: time.sleep(600)  # stop between writing and renaming
transport = outbox.OutboxTransport(Path(sys.argv[1]))
transport.open()
transport.send_messages([note("reader@example.com")])
"""


def test_a_half_written_message_of_a_killed_process_is_removed_at_the_next_start(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "outbox"
    root = Path(__file__).resolve().parent.parent
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], cwd=root) for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 30
        while len(list(folder.glob(".tmp-*.eml"))) < 2:
            assert time.monotonic() < deadline, "the writers never started a message"
            time.sleep(0.05)
        killed, alive = writers
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        OutboxTransport(folder).open()
        left = [p.name for p in folder.glob(".tmp-*.eml")]
        assert left == [n for n in left if n.startswith(f".tmp-{alive.pid}-")] and len(left) == 1
    finally:
        for writer in writers:
            writer.kill()
            writer.wait()
    OutboxTransport(folder).open()
    assert list(folder.glob(".tmp-*")) == []
