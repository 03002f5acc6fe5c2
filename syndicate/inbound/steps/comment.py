"""Step comment: what no step before claimed is a person's reply, filed for the post it names.

From a reader → a comment on the post; from an editor → an answer about that column. Written by
someone other than the recipient it names (or to a send-wide reply address, which names no one)
→ filed for the post, never as that recipient's; named only by an In-Reply-To its writer does
not own → unmatched. A token for a send or recipient we do not have, or none → unmatched, kept
with its text for the author. Comments and answers are forwarded to the author (step forward)
when inbound.forward_to_author is on.
"""

from __future__ import annotations

from syndicate.inbound.context import MessageContext, Writer
from syndicate.inbound.steps import forward
from syndicate.inbound.steps.unsubscribe import is_request
from syndicate.models import Classification, Identity, ReplyKind

CHANNEL_KINDS = {"newsletter": ReplyKind.COMMENT, "column": ReplyKind.EDITOR_RESPONSE}
FORWARDED_KINDS = (ReplyKind.COMMENT, ReplyKind.EDITOR_RESPONSE)


def process(message: MessageContext) -> None:
    identity, writer, inbound = message.identity, message.writer, message.inbound
    if writer is Writer.UNKNOWN:
        message.classification = Classification(
            ReplyKind.UNMATCHED, identity, None, None, message.words, reason=unmatched(identity)
        )
        return
    assert message.found is not None  # a writer is known only for a send and recipient we have
    kind = CHANNEL_KINDS.get(message.found.channel, ReplyKind.COMMENT)
    written_by = inbound.sender or "an unknown sender"
    if writer is Writer.SHARED:
        # Every reader of the send holds the same token, so From alone says who wrote, and a
        # From line proves nothing. (An "unsubscribe" is not obeyed: their own link is.)
        asked = is_request(message.words, inbound.subject)
        message.decide(
            kind,
            f"claimed by From {inbound.sender} (recipient {message.recipient_id}, unverified): "
            f"the shared reply address of send {identity.send_id} names no one; "
            "filed for the post, not as theirs"
            + ("; asks to unsubscribe, not acted on" if asked else ""),
            as_theirs=False,
        )
    elif writer is Writer.SOMEONE_ELSE and identity.via == "message-id":
        message.decide(
            ReplyKind.UNMATCHED,
            f"In-Reply-To names recipient {message.recipient_id}, but the message came from "
            f"{written_by}, not their address",
            as_theirs=False,
        )
    elif writer is Writer.SOMEONE_ELSE:
        # The message may be about the post, but it cannot speak for the recipient.
        message.decide(
            kind,
            f"{identity.via} of recipient {message.recipient_id}, but written by {written_by}, "
            "not their address: filed for the post, not as theirs",
            as_theirs=False,
        )
    else:
        message.decide(kind, f"matched by {identity.via}")
    if message.decided.kind in FORWARDED_KINDS and message.settings.inbound.forward_to_author:
        message.afterwards.append(forward.to_author)


def unmatched(identity: Identity) -> str:
    if identity.send_id is not None:
        return (
            f"names send {identity.send_id} / recipient {identity.recipient_id}, "
            "which are not in this database"
        )
    if identity.rejected_tokens:
        return "reply token did not verify (altered or forged): " + ", ".join(
            identity.rejected_tokens
        )
    return "no reply token and no In-Reply-To/References to one of our messages"
