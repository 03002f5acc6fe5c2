"""Finding 3 (issue 11): a reply with a forged `From: author` approved a held send, and the
approval token never expired. Now the reply must be authenticated as the author's — a valid
DKIM signature of the author's domain (dkimpy; DNS replaced by its `dnsfunc=` hook), or an
Authentication-Results header from the author's own MX (inbound.trusted_authserv_id) — and the
token carries its signed issue time. The author is emailed a confirmation of every approval."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from syndicate import db, tokens
from syndicate.inbound import pipeline
from syndicate.inbound.steps.approve import handle_approval_reply
from syndicate.models import SendState
from syndicate.runtime import Runtime
from tests.test_approval import awaiting  # noqa: F401 (the fixture: a send awaiting approval)

parse = BytesParser(policy=policy.default).parsebytes
AUTHOR = "jane@example.com"


def answer(preview: EmailMessage, *results: str, to: str | None = None) -> bytes:
    """The author's answer as it reaches us, with whatever Authentication-Results it carries
    (topmost first)."""
    msg = EmailMessage()
    for value in results:
        msg["Authentication-Results"] = value
    msg["From"] = f"Jane Marlowe <{AUTHOR}>"
    msg["To"] = to or str(preview["Reply-To"])
    msg["Subject"] = "Re: " + str(preview["Subject"])
    msg["Message-ID"] = "<answer-1@example.com>"
    msg.set_content("approve\n\n> A new newsletter is ready.\n")
    return msg.as_bytes()


def send_state(engine, send_id: int) -> str:
    with engine.connect() as conn:
        return db.sends.send_state(conn, send_id)


def dkim_key() -> tuple[bytes, bytes]:
    """(private PEM, the DNS TXT record publishing its public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def signed(raw: bytes, domain: str, pem: bytes) -> bytes:
    signature = dkim.sign(
        raw, b"sel", domain.encode(), pem, include_headers=[b"from", b"to", b"subject"]
    )
    return signature + raw


@pytest.mark.parametrize(
    "results",
    [
        (),  # a forged From and nothing else
        (
            "mx.attacker.example; dkim=pass header.d=example.com; "
            "dmarc=pass header.from=example.com",
        ),
        (  # our MX found nothing; the pass below it was written by the sender
            "mx.notes.example.com; dkim=none; dmarc=none header.from=example.com",
            "mx.notes.example.com; dkim=pass header.d=example.com; dmarc=pass",
        ),
        ("mx.notes.example.com; dkim=pass header.d=evil.example; dmarc=none",),
    ],
)
def test_a_forged_from_with_no_proof_of_the_author_approves_nothing(awaiting, results) -> None:  # noqa: F811
    cfg, engine, handler, preview, send_id = awaiting
    key = db.meta.hmac_key(engine, cfg.hmac_key_from_env())
    outcome = pipeline.process(
        Runtime(cfg, engine=engine, key=key), answer(preview, *results), source="test"
    )
    assert outcome.detail.startswith("not approved: the reply is not authenticated")
    assert send_state(engine, send_id) == SendState.AWAITING_APPROVAL.value
    assert len(handler.messages) == 1  # the preview; no confirmation of anything


def test_our_own_mx_reporting_a_pass_approves_and_the_author_gets_a_receipt(awaiting) -> None:  # noqa: F811
    cfg, engine, handler, preview, send_id = awaiting
    key = db.meta.hmac_key(engine, cfg.hmac_key_from_env())
    raw = answer(preview, "mx.notes.example.com; spf=pass; dmarc=pass header.from=example.com")
    outcome = pipeline.process(Runtime(cfg, engine=engine, key=key), raw, source="test")
    assert outcome.detail.startswith("approved: approved by reply (dmarc=pass")
    assert send_state(engine, send_id) == SendState.SCHEDULED.value
    [_, receipt] = handler.messages
    assert receipt.rcpt_tos == [AUTHOR]
    message = parse(receipt.data)
    assert str(message["Subject"]).startswith("Approved: Please approve me")
    body = message.get_body(("plain",)).get_content()
    assert f"syndicate cancel {send_id}" in body and "4 readers" in body


def test_a_valid_dkim_signature_of_the_authors_domain_approves(awaiting) -> None:  # noqa: F811
    cfg, engine, handler, preview, send_id = awaiting
    pem, record = dkim_key()

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name.endswith(b"example.com.") else None

    for domain in ("evil.example", "mail.example.com"):  # someone else's, a subdomain
        other = signed(answer(preview), domain, pem)
        result = handle_approval_reply(
            Runtime(cfg, engine=engine), parse(other), raw=other, dnsfunc=dns
        )
        assert not result.accepted and "not authenticated" in result.reason
    tampered = signed(answer(preview), "example.com", pem).replace(b"approve\n", b"approve \n")
    result = handle_approval_reply(
        Runtime(cfg, engine=engine), parse(tampered), raw=tampered, dnsfunc=dns
    )
    assert not result.accepted and "not authenticated" in result.reason
    assert send_state(engine, send_id) == SendState.AWAITING_APPROVAL.value
    good = signed(answer(preview), "example.com", pem)
    result = handle_approval_reply(Runtime(cfg, engine=engine), parse(good), raw=good, dnsfunc=dns)
    assert result.accepted and "dkim d=example.com" in result.reason
    assert send_state(engine, send_id) == SendState.SCHEDULED.value
    assert [m.rcpt_tos for m in handler.messages] == [[AUTHOR], [AUTHOR]]


def test_approval_tokens_expire_and_old_tokens_without_a_time_do_not_approve(awaiting) -> None:  # noqa: F811
    cfg, engine, _, preview, send_id = awaiting
    trusted = "mx.notes.example.com; dmarc=pass header.from=example.com"
    later = db.now() + timedelta(days=cfg.inbound.approval_max_age_days, hours=1)
    result = handle_approval_reply(
        Runtime(cfg, engine=engine), parse(answer(preview, trusted)), at=later
    )
    assert not result.accepted and "expired" in result.reason
    key = db.meta.hmac_key(engine, cfg.hmac_key_from_env())
    body = f"a{send_id}-0"  # the token as previews carried it before: no time, never expired
    untimed = f"{body}-{tokens._mac(key, body)}"
    to = tokens.reply_address(cfg.mail.reply_address, untimed)
    result = handle_approval_reply(
        Runtime(cfg, engine=engine), parse(answer(preview, trusted, to=to))
    )
    assert not result.accepted and "no issue time" in result.reason
    # A timed token altered to look fresh fails its signature.
    stale = str(preview["Reply-To"].addresses[0].addr_spec)
    forged = re.sub(r"-t\d+-", f"-t{int(later.timestamp())}-", stale)
    assert forged != stale
    result = handle_approval_reply(
        Runtime(cfg, engine=engine), parse(answer(preview, trusted, to=forged))
    )
    assert not result.accepted and "token" in result.reason
    assert send_state(engine, send_id) == SendState.AWAITING_APPROVAL.value
