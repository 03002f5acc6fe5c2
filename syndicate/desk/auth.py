"""The desk's one author account: an argon2 password hash, a signed session cookie, CSRF tokens
bound to the session, the known-device cookie, and the same-origin rule for every POST.

A session is a signed cookie naming a random session id and the database's current session
epoch; setting a password or logging out draws a new epoch, which ends every session at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request

from syndicate.errors import SyndicateError

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
SESSION_COOKIE = "syndicate_desk"
DEVICE_COOKIE = "syndicate_desk_device"
LOGIN_COOKIE = "syndicate_desk_login"
LOGIN_MAX_AGE = 3600
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


def _hasher() -> Any:
    """argon2-cffi's defaults: RFC 9106's second recommendation (argon2id, 64 MiB, 3 passes).
    Imported here, so the web app starts (and its other pages work) before the first login."""
    from argon2 import PasswordHasher

    return PasswordHasher()


def check_new_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise SyndicateError(
            f"the desk password is {len(password)} characters; use at least {MIN_PASSWORD_CHARS}"
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise SyndicateError(f"the desk password is longer than {MAX_PASSWORD_CHARS} characters")
    return password


def hash_password(password: str) -> str:
    return str(_hasher().hash(check_new_password(password)))


def password_matches(stored_hash: str, password: str) -> bool:
    if not password or len(password) > MAX_PASSWORD_CHARS:
        return False
    from argon2.exceptions import InvalidHashError, VerificationError

    try:  # VerifyMismatchError is a VerificationError
        return bool(_hasher().verify(stored_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def new_epoch() -> str:
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class Session:
    sid: str
    csrf: str


class Sessions:
    """Issues and reads the signed session cookie; derives each session's CSRF token."""

    def __init__(self, key: bytes, max_age_seconds: int) -> None:
        self.key = key
        self.max_age = max_age_seconds
        self.serializer = URLSafeTimedSerializer(key, salt="syndicate.desk.session")
        self.login_serializer = URLSafeTimedSerializer(key, salt="syndicate.desk.login")

    def issue(self, epoch: str) -> str:
        return self.serializer.dumps({"sid": secrets.token_urlsafe(18), "epoch": epoch})

    def read(self, cookie: str | None, epoch: str | None) -> Session | None:
        if not cookie or not epoch:
            return None
        try:
            data = self.serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        sid, their_epoch = data.get("sid"), data.get("epoch")
        if not isinstance(sid, str) or not isinstance(their_epoch, str):
            return None
        if not hmac.compare_digest(their_epoch.encode(), epoch.encode()):
            return None
        return Session(sid=sid, csrf=self.csrf_for(sid))

    def csrf_for(self, sid: str) -> str:
        return hmac.new(self.key, f"desk-csrf:{sid}".encode(), hashlib.sha256).hexdigest()

    def login_token(self, nonce: str) -> str:
        return self.login_serializer.dumps(nonce)

    def login_token_ok(self, token: str, nonce: str | None) -> bool:
        if not nonce:
            return False
        try:
            signed = self.login_serializer.loads(token, max_age=LOGIN_MAX_AGE)
        except BadSignature:
            return False
        return isinstance(signed, str) and hmac.compare_digest(signed.encode(), nonce.encode())


class Devices:
    """The "known device" cookie: issued at each successful login, it lets its browser past the
    account-wide lock (never past the per-address limit or the password). It is signed, names
    the device epoch (a new password draws a new one, forgetting every device) and lasts
    `max_age` seconds; a forged, foreign, old or forgotten one is simply not known."""

    def __init__(self, key: bytes, max_age_seconds: int) -> None:
        self.max_age = max_age_seconds
        self.serializer = URLSafeTimedSerializer(key, salt="syndicate.desk.device")

    def issue(self, epoch: str) -> str:
        return self.serializer.dumps({"device": secrets.token_urlsafe(12), "epoch": epoch})

    def known(self, cookie: str | None, epoch: str | None) -> bool:
        if not cookie or not epoch:
            return False
        try:
            data = self.serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # SignatureExpired is one
            return False
        their_epoch = data.get("epoch") if isinstance(data, dict) else None
        return isinstance(their_epoch, str) and hmac.compare_digest(
            their_epoch.encode(), epoch.encode()
        )


def csrf_ok(session: Session, given: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), session.csrf.encode())


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request, allowed: str) -> bool:
    """A POST must say where it came from: its Origin (every current browser sends one on a
    POST), or, without one, Sec-Fetch-Site saying same-origin. Anything else is refused."""
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.lower() == allowed
    return request.headers.get("sec-fetch-site") == "same-origin"
