"""The author's answers to replies, sent from the desk: one row per answer that went out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from syndicate.db import times
from syndicate.db.schema import reply_answers


@dataclass(frozen=True)
class Answer:
    id: int
    reply_id: int
    sent_at: datetime
    to_address: str
    message_id: str
    body: str


def record_answer(
    conn: Connection, reply_id: int, sent_at: datetime, to_address: str, message_id: str, body: str
) -> Answer:
    values = {
        "reply_id": reply_id,
        "sent_at": sent_at,
        "to_address": to_address,
        "message_id": message_id,
        "body": body,
    }
    new_id = conn.execute(
        insert(reply_answers).values(**values).returning(reply_answers.c.id)
    ).scalar_one()
    return Answer(id=new_id, **values)  # type: ignore[arg-type]


def answers_to(conn: Connection, reply_id: int) -> list[Answer]:
    """Every answer to one reply, oldest first."""
    rows = conn.execute(
        select(reply_answers)
        .where(reply_answers.c.reply_id == reply_id)
        .order_by(reply_answers.c.sent_at, reply_answers.c.id)
    )
    return [
        Answer(
            id=row.id,
            reply_id=row.reply_id,
            sent_at=times.as_utc(row.sent_at),
            to_address=row.to_address,
            message_id=row.message_id,
            body=row.body,
        )
        for row in rows
    ]
