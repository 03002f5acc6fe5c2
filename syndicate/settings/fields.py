"""What every settings section shares: the base model that refuses unknown keys, and the field
types whose rule is checked when the file is loaded (addresses, URLs, zones, templates,
policies), each a plain function so that its message can name what was expected."""

from __future__ import annotations

import string
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict

from syndicate.errors import SyndicateError


class Section(BaseModel):
    """One `[section]` of settings.toml: frozen, and a misspelt key is an error, not a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def require_address(value: str) -> str:
    local, sep, domain = value.partition("@")
    if not sep or not local or "." not in domain or any(c.isspace() for c in value):
        raise ValueError(f"expected an email address like name@example.com, got {value!r}")
    return value


def require_http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an absolute http(s) URL, got {value!r}")
    return value


def require_port(value: int) -> int:
    if not 0 < value < 65536:
        raise ValueError(f"expected a TCP port from 1 to 65535, got {value}")
    return value


def require_base_url(value: str) -> str:
    return require_http_url(value).rstrip("/")


def require_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"expected an IANA time zone like 'America/Toronto', got {value!r}"
        ) from exc
    return value


def require_fields(template: str, allowed: set[str]) -> str:
    """A `{name}` template may only name what syndicate fills in; checked at load, not at send."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(
            f"not a valid template ({exc}); write a literal brace as {{{{ or }}}}"
        ) from None
    unknown = sorted(n for n in names if n not in allowed)
    if unknown:
        choices = ", ".join("{" + n + "}" for n in sorted(allowed))
        raise ValueError(f"unknown placeholder {{{unknown[0]}}}: use {choices}")
    return template


def require_policy(value: str, *, allow_digest: bool) -> str:
    from syndicate.scheduling.policies import parse_policy

    try:
        policy = parse_policy(value)
    except SyndicateError as exc:
        raise ValueError(str(exc)) from None
    if policy.kind == "digest" and not allow_digest:
        raise ValueError(
            "a digest is for readers only; editors get each column on its own "
            "(use 'immediately', 'at HH:MM', 'cron: …' or 'manual')"
        )
    return value


def require_time_rule(value: str) -> str:
    if not value.strip():
        return value
    from syndicate.scheduling.timeparse import check_embargo_rule

    try:
        check_embargo_rule(value)
    except SyndicateError as exc:
        raise ValueError(str(exc)) from None
    return value


# The field types: `url: HttpUrl` reads as what it is and carries its own check.
EmailAddress = Annotated[str, AfterValidator(require_address)]
HttpUrl = Annotated[str, AfterValidator(require_http_url)]
# An absolute http(s) URL without its trailing '/', so paths can be appended with one.
BaseUrl = Annotated[str, AfterValidator(require_base_url)]
ZoneName = Annotated[str, AfterValidator(require_zone)]
Port = Annotated[int, AfterValidator(require_port)]
# A subject line: `{title}` and `{site}` are filled in.
SubjectTemplate = Annotated[str, AfterValidator(lambda v: require_fields(v, {"title", "site"}))]
ReaderPolicy = Annotated[str, AfterValidator(lambda v: require_policy(v, allow_digest=True))]
EditorPolicy = Annotated[str, AfterValidator(lambda v: require_policy(v, allow_digest=False))]
TimeRule = Annotated[str, AfterValidator(require_time_rule)]
