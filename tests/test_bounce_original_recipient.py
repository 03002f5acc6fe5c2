"""README (Replies, where bounces come back): an MTA or mailbox that records the original
recipient in X-Original-To instead of Delivered-To keeps the VERP token, and the bounce counts."""

from __future__ import annotations

from pathlib import Path

from syndicate.inbound import pipeline
from syndicate.runtime import Runtime
from tests.support.hostile_mail import dsn
from tests.support.inbound import load
from tests.test_trust_mail_bounce import base, project, verp  # noqa: F401 (fixtures)

ZOE = "zoe.perez@example.org"


def test_x_original_to_carries_the_bounce_token(project: Path) -> None:  # noqa: F811
    settings, engine, key = load(project)
    with_header = b"X-Original-To: " + verp(project, 1, 2).encode() + b"\n" + dsn(ZOE)
    with engine.connect() as conn:
        result = pipeline.classify(
            conn, pipeline.parse.parse(with_header, source="t"), Runtime(settings, key=key)
        )
    assert (result.verified, result.recipient_id, result.identity.via) == (
        True,
        2,
        "verp:X-Original-To",
    )
    forged = b"X-Original-To: " + verp(project, 1, 2, key=b"x" * 32).encode() + b"\n" + dsn(ZOE)
    with engine.connect() as conn:
        result = pipeline.classify(
            conn, pipeline.parse.parse(forged, source="t"), Runtime(settings, key=key)
        )
    assert not result.verified
