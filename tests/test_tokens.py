"""Reply and unsubscribe tokens: what we sign verifies; anything altered or forged does not."""

from __future__ import annotations

from syndicate import tokens

KEY = b"k" * 32


def test_round_trip_and_case_insensitive() -> None:
    token = tokens.make(KEY, "reply", 12, 345)
    claim = tokens.verify(KEY, token)
    assert claim == tokens.TokenClaim("reply", 12, 345)
    assert tokens.verify(KEY, token.upper()) == claim
    address = tokens.reply_address("replies@notes.example.com", token)
    assert tokens.token_from_address(f"<{address}>") == token


def test_altered_forged_and_misused_tokens_are_rejected() -> None:
    token = tokens.make(KEY, "reply", 12, 345)
    altered_recipient = token.replace("-345-", "-346-")
    assert tokens.verify(KEY, altered_recipient) is None
    flipped = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert tokens.verify(KEY, flipped) is None
    assert tokens.verify(b"another key", token) is None
    assert tokens.verify(KEY, "r12-345-" + "a" * 16) is None
    assert tokens.verify(KEY, "garbage") is None
    assert tokens.verify(KEY, token, purpose="unsubscribe") is None
    unsubscribe = tokens.make(KEY, "unsubscribe", 12, 345)
    assert tokens.verify(KEY, unsubscribe, purpose="unsubscribe") is not None
    assert tokens.verify(KEY, unsubscribe, purpose="reply") is None
    assert tokens.token_from_address("replies@notes.example.com") is None
