"""`syndicate inbound poll` against a real IMAP server: Dovecot on 127.0.0.1, a passwd-file user
and a Maildir in a temporary folder, started for this module in its own process group."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.conftest import free_port
from tests.support.inbound import cli, copy_project, edit, fixture, require_tool, sent_fixtures

USER, PASSWORD = "replies", "imap-test-secret"


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory):
    binary = require_tool("dovecot")
    # Dovecot's login processes run as an unprivileged user: the folder must be reachable.
    root = Path(tempfile.mkdtemp(prefix="syndicate-dovecot-"))
    root.chmod(0o755)
    port = free_port()
    (root / "mail" / USER).mkdir(parents=True)
    running_as_root = os.getuid() == 0
    uid, gid = (65534, 65534) if running_as_root else (os.getuid(), os.getgid())
    if running_as_root:
        for path in (root / "mail", root / "mail" / USER):
            os.chown(path, uid, gid)
    (root / "passwd").write_text(
        f"{USER}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{root}/mail/{USER}::\n", encoding="utf-8"
    )
    user = pwd.getpwuid(os.getuid()).pw_name
    own_users = (
        ""
        if running_as_root
        else f"default_login_user = {user}\ndefault_internal_user = {user}\n"
        f"default_internal_group = {grp.getgrgid(os.getgid()).gr_name}\n"
    )
    (root / "dovecot.conf").write_text(
        f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
{own_users}passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
""",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [binary, "-F", "-c", str(root / "dovecot.conf")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with IMAPClient("127.0.0.1", port=port, ssl=False, timeout=2) as client:
                    client.login(USER, PASSWORD)
                break
            except Exception as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (
                        (root / "dovecot.log").read_text()
                        if (root / "dovecot.log").exists()
                        else ""
                    )
                    output = process.stdout.read().decode() if process.poll() is not None else ""
                    pytest.fail(f"dovecot did not start: {exc}\n{output}\n{log}")
                time.sleep(0.1)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        shutil.rmtree(root, ignore_errors=True)


base = sent_fixtures("imap-base")[0]


def deliver(port: int, *names: str, folder: str = "INBOX") -> None:
    with IMAPClient("127.0.0.1", port=port, ssl=False) as client:
        client.login(USER, PASSWORD)
        for name in names:
            client.append(folder, fixture(name))


def folder_sizes(port: int) -> dict[str, int]:
    with IMAPClient("127.0.0.1", port=port, ssl=False) as client:
        client.login(USER, PASSWORD)
        return {
            name: client.folder_status(name, ["MESSAGES"])[b"MESSAGES"]
            for name in ("INBOX", "Processed")
            if client.folder_exists(name)
        }


def test_poll_files_new_messages_moves_them_and_resumes_by_uid(
    dovecot: int, base: Path, tmp_path: Path
) -> None:
    project = copy_project(base, tmp_path / "project")
    config = project / "settings.toml"
    edit(config, 'host = ""\n# 993', 'host = "127.0.0.1"\n# 993')
    edit(config, "port = 993", f"port = {dovecot}")
    edit(config, 'security = "ssl"', 'security = "none"')
    edit(
        config,
        'username = ""\n# Name of the environment variable holding the IMAP',
        f'username = "{USER}"\n# Name of the environment variable holding the IMAP',
    )
    os.environ["SYNDICATE_IMAP_PASSWORD"] = PASSWORD
    try:
        deliver(dovecot, "thunderbird_fr.eml", "dsn_postfix.eml", "auto_rfc3834.eml")
        first = cli(project, "inbound", "poll")
        assert first.returncode == 0, first.stderr.decode()
        assert "3 message(s)" in first.stdout.decode()
        assert folder_sizes(dovecot) == {"INBOX": 0, "Processed": 3}

        # The same reply delivered again (a client re-sending it) is recognised by Message-ID.
        deliver(dovecot, "thunderbird_fr.eml", "editor_reply.eml")
        second = cli(project, "inbound", "poll")
        assert (
            "1 duplicate" in second.stdout.decode()
            and "1 editor_response" in second.stdout.decode()
        )
        third = cli(project, "inbound", "poll")
        assert "nothing new" in third.stdout.decode()

        listed = json.loads(cli(project, "replies", "list", "--json").stdout)
        assert sorted((r["kind"], r["source"]) for r in listed) == [
            ("auto_reply", "imap"),
            ("bounce", "imap"),
            ("comment", "imap"),
            ("editor_response", "imap"),
        ]
        comment = next(r for r in listed if r["kind"] == "comment")
        assert comment["state"] == "forwarded"
        assert comment["text"].startswith("Une dernière remarque")
    finally:
        os.environ.pop("SYNDICATE_IMAP_PASSWORD", None)


def test_without_a_processed_folder_messages_are_flagged_seen_and_resumed_by_uid(
    dovecot: int, base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_project(base, tmp_path / "project")
    config = project / "settings.toml"
    edit(config, 'host = ""\n# 993', 'host = "127.0.0.1"\n# 993')
    edit(config, "port = 993", f"port = {dovecot}")
    edit(config, 'security = "ssl"', 'security = "none"')
    edit(config, 'folder = "INBOX"', 'folder = "Replies"')
    edit(config, 'processed_folder = "Processed"', 'processed_folder = ""')
    edit(
        config,
        'username = ""\n# Name of the environment variable holding the IMAP',
        f'username = "{USER}"\n# Name of the environment variable holding the IMAP',
    )
    monkeypatch.setenv("SYNDICATE_IMAP_PASSWORD", PASSWORD)
    with IMAPClient("127.0.0.1", port=dovecot, ssl=False) as client:
        client.login(USER, PASSWORD)
        client.create_folder("Replies")
    deliver(dovecot, "gmail_de.eml", "auto_x_autoreply.eml", folder="Replies")
    assert "2 message(s)" in cli(project, "inbound", "poll").stdout.decode()
    with IMAPClient("127.0.0.1", port=dovecot, ssl=False) as client:
        client.login(USER, PASSWORD)
        client.select_folder("Replies", readonly=True)
        flags = client.get_flags(client.search("ALL"))
    assert len(flags) == 2 and all(b"\\Seen" in f for f in flags.values())
    # A new message with a different Message-ID is the only one the next poll reads.
    deliver(dovecot, "apple_fr.eml", folder="Replies")
    assert "Inbound: 1 message(s): 1 comment." in cli(project, "inbound", "poll").stdout.decode()
    assert "nothing new" in cli(project, "inbound", "poll").stdout.decode()


def test_a_wrong_password_is_one_clear_error(dovecot: int, base: Path, tmp_path: Path) -> None:
    project = copy_project(base, tmp_path / "project")
    config = project / "settings.toml"
    edit(config, 'host = ""\n# 993', 'host = "127.0.0.1"\n# 993')
    edit(config, "port = 993", f"port = {dovecot}")
    edit(config, 'security = "ssl"', 'security = "none"')
    result = cli(project, "inbound", "poll")
    assert result.returncode == 1
    assert "SYNDICATE_IMAP_PASSWORD" in result.stderr.decode()
