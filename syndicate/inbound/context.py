"""The one value every inbound step reads and writes: a `MessageContext`.

It starts as the bytes and where they came from; `parse` adds the parsed message, `identify`
the send and recipient it names, `verify` who wrote it, the deciding step its classification
and the actions to take, `file` the reply's row, and the pipeline the outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from syndicate.models import (
    Classification,
    Identity,
    InboundMessage,
    Recipient,
    ReplyKind,
    ReplyState,
)

if TYPE_CHECKING:
    from syndicate.db import Connection, Engine
    from syndicate.db.sends import Send
    from syndicate.runtime import Runtime
    from syndicate.settings import Settings


class Writer(Enum):
    """Who wrote a message, as far as a From line checked against our records can tell."""

    UNKNOWN = "unknown"  # it names no send and recipient we have
    RECIPIENT = "recipient"  # From is the address on record of the recipient it names
    SOMEONE_ELSE = "someone else"  # it names a recipient, but From is another address
    SHARED = "shared"  # a send-wide reply address: it names the send, no one in it


@dataclass(frozen=True)
class Outcome:
    """What became of one message: its reply row, kind and state."""

    reply_id: int
    kind: ReplyKind
    state: ReplyState
    duplicate: bool = False
    detail: str = ""
    # Refused for its size (only headers kept) and written by one of our recipients from their
    # own address: they are told at their address on record. (The MTA is never asked to bounce
    # it: its bounce goes to the envelope sender, which anyone can forge: backscatter.)
    too_large: bool = False


@dataclass(frozen=True)
class Target:
    """The stored send and recipient a message names."""

    send: Send
    recipient: Recipient

    @property
    def post_id(self) -> int:
        return self.send.post_id

    @property
    def channel(self) -> str:
        return self.send.channel.value


# Something a deciding step asks for, done once the message is recorded: `actions` run in the
# record's transaction (step `file`), `afterwards` once it is committed (step `forward`).
Action = Callable[["MessageContext"], None]

UNMATCHED = Identity(purpose="")


@dataclass
class MessageContext:
    """One message on its way through the pipeline (see pipeline.PIPELINE)."""

    raw: bytes
    source: str
    # The entrance's parts: settings, key, templates, transports, clock (`at` is read from it).
    runtime: Runtime
    at: datetime
    envelope_recipients: tuple[str, ...] = ()
    # How many bytes arrived, when the entrance kept only the first max_message_bytes + 1.
    size: int = 0
    # The transaction the message is classified and recorded in; the engine, for what happens
    # after the commit (None when only classifying).
    conn: Connection | None = None
    engine: Engine | None = None
    # parse
    parsed: InboundMessage | None = None
    too_large: str = ""  # why only the headers were read ("" when the whole message was)
    # identify
    installation: str = ""
    identity: Identity = UNMATCHED
    found: Target | None = None
    # verify
    writer: Writer = Writer.UNKNOWN
    # text
    words: str = ""
    # the step that decides
    classification: Classification | None = None
    actions: list[Action] = field(default_factory=list)
    afterwards: list[Action] = field(default_factory=list)
    # file, and the actions
    reply_id: int = 0
    state: ReplyState = ReplyState.FILED
    detail: str = ""
    outcome: Outcome | None = None

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def key(self) -> bytes:
        return self.runtime.key

    @property
    def inbound(self) -> InboundMessage:
        if self.parsed is None:
            raise RuntimeError("the message has not been parsed yet (step parse)")
        return self.parsed

    @property
    def connection(self) -> Connection:
        if self.conn is None:
            raise RuntimeError("this step needs the pipeline's transaction")
        return self.conn

    @property
    def database(self) -> Engine:
        if self.engine is None:
            raise RuntimeError("this step acts, and classifying never does")
        return self.engine

    @property
    def decided(self) -> Classification:
        if self.classification is None:
            raise RuntimeError("no step has classified the message")
        return self.classification

    @property
    def post_id(self) -> int | None:
        return self.found.post_id if self.found else None

    @property
    def recipient_id(self) -> int | None:
        return self.found.recipient.id if self.found else None

    def decide(self, kind: ReplyKind, reason: str, *, as_theirs: bool = True, **extra: Any) -> None:
        """Classify the message for the post it names; `as_theirs=False` files it for the post
        but not as the named recipient's (a From line that proves nothing)."""
        self.classification = Classification(
            kind,
            self.identity,
            self.post_id,
            self.recipient_id if as_theirs else None,
            self.words,
            reason=reason,
            **extra,
        )
