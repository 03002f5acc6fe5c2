"""Open corrections and what happened to each, for the CLI: light enough for `status`.

(control.py loads the renderers; this module only the database.)
"""

from __future__ import annotations

from syndicate import db
from syndicate.corrections.rows import Correction, CorrectionAction, CorrectionState
from syndicate.db import Engine
from syndicate.errors import SyndicateError


def listed(engine: Engine, open_only: bool = False) -> list[Correction]:
    with engine.begin() as conn:
        return db.corrections.listed(conn, open_only=open_only)


def show(engine: Engine, correction_id: int) -> tuple[Correction, list[dict]]:
    with engine.begin() as conn:
        correction = db.corrections.get(conn, correction_id)
        if correction is None:
            raise SyndicateError(
                f"no correction {correction_id} (see 'syndicate corrections list')"
            )
        return correction, db.corrections.delivered_to(conn, correction_id)


def waiting_lines(engine: Engine) -> list[str]:
    """One line per open correction, for `status` and `sends list`."""
    lines = []
    for c in listed(engine, open_only=True):
        what = f"KILL ({c.origin})" if c.action is CorrectionAction.KILL else c.summary
        verb = "to be sent" if c.state is CorrectionState.APPROVED else "waits for you"
        lines.append(f"Correction {c.id} of “{c.title}” {verb}: {what}")
    return lines
