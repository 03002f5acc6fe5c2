"""DKIM signing of finished message bytes (dkimpy), between compose and the transport.

Signing works on the exact bytes the transport sends (``policy.SMTP``, CRLF), after which the
message must not be re-serialised. The signature covers the headers providers look at for bulk
mail, including both RFC 8058 unsubscribe headers, so nobody on the way can add or alter them.

Run ``python -m syndicate.delivery.dkim [settings.toml]`` to print the DNS TXT record to publish.
"""

from __future__ import annotations

import base64
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from pathlib import Path

from syndicate.errors import SettingsError
from syndicate.settings import Dkim, Settings

# Signed when present. Required by the issue: From, Subject, Date, To, Message-ID and the two
# List-Unsubscribe headers; the rest protect the reply path and the body's interpretation.
SIGNED_HEADERS = (
    "From",
    "Subject",
    "Date",
    "To",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Reply-To",
    "List-Id",
    "MIME-Version",
    "Content-Type",
)


@dataclass(frozen=True)
class DkimKey:
    """A loaded signing key: what `sign` needs, read once per send rather than per message."""

    selector: str
    domain: str
    private_key: bytes  # PEM, PKCS#1 or PKCS#8 RSA


def load_key(config: Dkim, base_dir: Path = Path(".")) -> DkimKey | None:
    """The key the settings point at, or None when DKIM is not configured.

    A configured selector and domain without a readable key is a settings error: silently
    sending unsigned mail would hurt deliverability without anyone noticing.
    """
    if not config.configured:
        return None
    from dkim.crypto import UnparsableKeyError, parse_pem_private_key

    where, pem = _read_pem(config, base_dir)
    try:
        parse_pem_private_key(pem)
    except (UnparsableKeyError, ValueError) as exc:
        raise SettingsError(
            f"dkim: {where} is not a PEM RSA private key ({' '.join(str(exc).split())}); "
            "create one with "
            "'openssl genrsa -out dkim.pem 2048'"
        ) from None
    return DkimKey(config.selector, config.domain, pem)


def _read_pem(config: Dkim, base_dir: Path) -> tuple[str, bytes]:
    if config.private_key_path:
        path = Path(config.private_key_path).expanduser()
        path = path if path.is_absolute() else base_dir / path
        try:
            return f"private_key_path {path}", path.read_bytes()
        except OSError as exc:
            raise SettingsError(
                f"dkim.private_key_path: cannot read {path} ({exc.strerror}); fix the path or "
                "leave dkim.selector empty to send unsigned"
            ) from None
    value = os.environ.get(config.private_key_env, "")
    if not value.strip():
        raise SettingsError(
            f"dkim: selector and domain are set but there is no key: set dkim.private_key_path "
            f"or put the PEM key in ${config.private_key_env}"
        )
    return f"${config.private_key_env}", value.replace("\\n", "\n").encode()


def sign(message_bytes: bytes, config: DkimKey) -> bytes:
    """The message with a DKIM-Signature header prepended (relaxed/relaxed, rsa-sha256).

    Every signed header is listed twice in h= ("oversigning"): the second, empty instance
    makes the signature fail if anyone on the way adds another From or List-Unsubscribe.
    """
    import dkim as dkimpy  # here: a send without DKIM does not load dkimpy (~2 MB)

    present = _present_headers(message_bytes)
    headers = [h.encode() for h in SIGNED_HEADERS if h.lower() in present]
    headers += headers
    signature = dkimpy.sign(
        message_bytes,
        config.selector.encode(),
        config.domain.encode(),
        config.private_key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=headers,
        linesep=b"\r\n",
    )
    return signature + message_bytes


def signer_for(settings: Settings) -> Callable[[bytes], bytes] | None:
    """A bytes → bytes signing step for the transport, or None when DKIM is off."""
    key = load_key(settings.dkim, settings.base_dir)
    if key is None:
        return None
    return lambda message_bytes: sign(message_bytes, key)


def _present_headers(message_bytes: bytes) -> set[str]:
    head = BytesHeaderParser().parsebytes(message_bytes)
    return {name.lower() for name in head}


def public_key_record(key: DkimKey) -> str:
    """The TXT record to publish at ``<selector>._domainkey.<domain>``."""
    from dkim.crypto import parse_pem_private_key

    private = parse_pem_private_key(key.private_key)
    rsa_public = _der_sequence(
        _der_integer(private["modulus"]), _der_integer(private["publicExponent"])
    )
    rsa_encryption = bytes.fromhex("06092a864886f70d0101010500")  # OID rsaEncryption, NULL
    spki = _der_sequence(_der(0x30, rsa_encryption), _der(0x03, b"\x00" + rsa_public))
    return f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}"


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def _der_integer(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big")  # leading 0 keeps it positive
    return _der(0x02, raw)


def _der_sequence(*items: bytes) -> bytes:
    return _der(0x30, b"".join(items))


def main(argv: list[str]) -> int:
    from syndicate import settings as settings_module

    path = Path(argv[0]) if argv else settings_module.DEFAULT_CONFIG
    try:
        settings = settings_module.load(path)
        key = load_key(settings.dkim, settings.base_dir)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if key is None:
        print(
            "DKIM is off: set [dkim] selector, domain and a key in settings.toml", file=sys.stderr
        )
        return 1
    record = public_key_record(key)
    name = f"{key.selector}._domainkey.{key.domain}"
    chunks = " ".join(f'"{c}"' for c in re.findall(r".{1,250}", record))
    print(f"Publish this TXT record at {name}:\n\n{name}. IN TXT ( {chunks} )")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
