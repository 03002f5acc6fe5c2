"""The transport writes MAIL FROM and RCPT TO itself (transports/smtp.py `_angle`): a plain
address goes into <> as it is, anything else through smtplib's own quoteaddr. Both must give
what smtplib.SMTP.mail() and rcpt() would send."""

from __future__ import annotations

import smtplib

import pytest

from syndicate.delivery.transports.smtp import _PLAIN_ADDRESS, _angle

ADDRESSES = [
    "reader0000123@bench.example.com",
    "bounces+AbCdEf-Gh_Ij0123456789@mail.example.com",
    "o'brien@example.ie",
    "first.last@example.com",
    "a..b@example.com",
    ".leading@example.com",
    "trailing.@example.com",
    "x!#$%&*/=?^`{|}~@example.com",
    "user@sub-domain.example.co.uk",
    "user@localhost",
    "Zoë <zoe@example.com>",
    '"quoted local"@example.com',
    "spaced name@example.com",
    "user@[192.0.2.1]",
    "<>",
    "no-at-sign",
    "a@b@c",
    "user(comment)@example.com",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_the_envelope_address_is_what_smtplib_would_send(address: str) -> None:
    assert _angle(address) == smtplib.quoteaddr(address)


def test_the_fast_path_is_taken_for_plain_addresses_only() -> None:
    plain = [a for a in ADDRESSES if _PLAIN_ADDRESS.fullmatch(a)]
    assert "reader0000123@bench.example.com" in plain
    assert "bounces+AbCdEf-Gh_Ij0123456789@mail.example.com" in plain
    assert not {"Zoë <zoe@example.com>", "<>", "a@b@c", "user(comment)@example.com"} & set(plain)
