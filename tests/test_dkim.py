"""DKIM signing of messages from compose, verified with dkimpy against the public key (no DNS)."""

from __future__ import annotations

import base64
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from pathlib import Path

import dkim as dkimpy
import pytest

from syndicate.delivery.dkim import DkimKey, load_key, public_key_record, sign, signer_for
from syndicate.errors import SettingsError
from syndicate.settings import Dkim
from tests.support.cli import run_cli
from tests.support.edition import (
    example_posts,
    make_post,
    message_bytes,
    newsletter,
    require_tool,
    shipped_settings,
)
from tests.support.project import set_setting

REQUIRED = {
    b"from",
    b"subject",
    b"date",
    b"to",
    b"message-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
}


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A fresh 2048-bit RSA key made by openssl, as an operator would make one."""
    openssl = require_tool("openssl")
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    subprocess.run([openssl, "genrsa", "-out", str(path), "2048"], check=True, capture_output=True)
    return path.read_bytes()


@pytest.fixture(scope="module")
def key(pem: bytes) -> DkimKey:
    return DkimKey("s2026", "notes.example.com", pem)


def dns_for(key: DkimKey):
    """dkimpy's DNS lookup, answered from the record we would publish (no network)."""
    record = public_key_record(key).encode()
    name = f"{key.selector}._domainkey.{key.domain}.".encode()

    def lookup(query: bytes, timeout: int = 5) -> bytes | None:
        return record if query == name else None

    return lookup


def signed_header_names(signed: bytes) -> set[bytes]:
    header = BytesParser(policy=policy.SMTP).parsebytes(signed)["DKIM-Signature"]
    tags = dict(
        part.strip().split("=", 1) for part in "".join(str(header).split()).split(";") if part
    )
    return {name.strip().lower().encode() for name in tags["h"].split(":")}


def test_composed_edition_verifies_and_covers_the_bulk_mail_headers(key: DkimKey) -> None:
    raw = message_bytes(newsletter(example_posts()[0]))
    signed = sign(raw, key)
    assert signed.startswith(b"DKIM-Signature: ") and signed.endswith(raw)
    assert dkimpy.verify(signed, dnsfunc=dns_for(key))
    assert signed_header_names(signed) >= REQUIRED
    assert b"c=relaxed/relaxed" in signed.split(b"\r\n\r\n", 1)[0]


def test_non_ascii_subject_and_long_title_verify(key: DkimKey) -> None:
    title = "Zoë’s café — שלום 🎉 " + "and a long tail of words " * 6
    signed = sign(message_bytes(newsletter(make_post("<p>Body</p>", title=title))), key)
    assert dkimpy.verify(signed, dnsfunc=dns_for(key))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x=y"),
        (b"Subject: =?utf-8?q?The_job_is", b"Subject: =?utf-8?q?The_JOB_is"),
        (b"reads every answer", b"reads no answer"),
    ],
)
def test_any_change_to_signed_parts_breaks_the_signature(
    key: DkimKey, old: bytes, new: bytes
) -> None:
    signed = sign(message_bytes(newsletter(example_posts()[0])), key)
    assert old in signed
    assert not dkimpy.verify(signed.replace(old, new, 1), dnsfunc=dns_for(key))


def test_added_list_unsubscribe_header_breaks_the_signature(key: DkimKey) -> None:
    signed = sign(message_bytes(newsletter(example_posts()[0])), key)
    forged = b"List-Unsubscribe: <https://evil.example/>\r\n" + signed
    assert not dkimpy.verify(forged, dnsfunc=dns_for(key))


def test_public_record_matches_openssl(pem: bytes, key: DkimKey, tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_bytes(pem)
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(tmp_path / "k.pem"), "-pubout", "-outform", "der"],
        check=True,
        capture_output=True,
    ).stdout
    assert public_key_record(key) == f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def test_key_from_a_path_relative_to_settings_or_from_the_environment(
    pem: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "dkim.pem").write_bytes(pem)
    by_path = Dkim(selector="s1", domain="notes.example.com", private_key_path="keys/dkim.pem")
    assert load_key(by_path, tmp_path) == DkimKey("s1", "notes.example.com", pem)
    monkeypatch.setenv("MY_DKIM_KEY", pem.decode())
    by_env = Dkim(selector="s1", domain="notes.example.com", private_key_env="MY_DKIM_KEY")
    assert load_key(by_env, tmp_path) == DkimKey("s1", "notes.example.com", pem)
    # A key pasted into a one-line variable with literal \n works too.
    monkeypatch.setenv("MY_DKIM_KEY", pem.decode().replace("\n", "\\n"))
    assert load_key(by_env, tmp_path).private_key.strip() == pem.strip()


def test_dkim_off_unless_configured_and_clear_errors_when_half_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_key(Dkim(), tmp_path) is None
    assert signer_for(shipped_settings()) is None  # the shipped settings leave DKIM off
    monkeypatch.delenv("SYNDICATE_DKIM_PRIVATE_KEY", raising=False)
    with pytest.raises(SettingsError, match=r"SYNDICATE_DKIM_PRIVATE_KEY"):
        load_key(Dkim(selector="s", domain="example.com"), tmp_path)
    with pytest.raises(SettingsError, match=r"cannot read .*missing\.pem"):
        load_key(Dkim(selector="s", domain="example.com", private_key_path="missing.pem"), tmp_path)
    (tmp_path / "bad.pem").write_text("-----BEGIN X-----\nbm90IGEga2V5\n-----END X-----\n")
    with pytest.raises(SettingsError, match=r"not a PEM RSA private key.*openssl genrsa"):
        load_key(Dkim(selector="s", domain="example.com", private_key_path="bad.pem"), tmp_path)


def test_sent_messages_and_preview_eml_are_signed_and_dns_record_command(
    project: Path, pem: bytes
) -> None:
    (project / "dkim.pem").write_bytes(pem)
    config = project / "settings.toml"
    set_setting(config, 'selector = ""', 'selector = "s2026"')
    set_setting(config, 'domain = ""', 'domain = "notes.example.com"')
    set_setting(config, 'private_key_path = ""', 'private_key_path = "dkim.pem"')
    assert run_cli(project, "run", "--once").returncode == 0
    key = DkimKey("s2026", "notes.example.com", pem)
    # Every message that really went out (readers' editions, editors' drafts) is signed.
    sent = sorted((project / "outbox").glob("*.eml"))
    assert len(sent) == 6
    for path in sent:
        assert dkimpy.verify(path.read_bytes(), dnsfunc=dns_for(key)), path.name
    out = project / "signed.eml"
    result = run_cli(project, "preview", "latest", "--format", "eml", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert dkimpy.verify(out.read_bytes(), dnsfunc=dns_for(key))
    record = subprocess.run(
        [sys.executable, "-m", "syndicate.delivery.dkim", str(config)],
        capture_output=True,
        text=True,
    )
    assert record.returncode == 0, record.stderr
    assert "s2026._domainkey.notes.example.com. IN TXT" in record.stdout
    assert public_key_record(key)[:60] in record.stdout
