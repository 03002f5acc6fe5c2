"""review3: `syndicate send POST` (newsletter) ignores the digest that carries the post, so a
reader gets the post twice (once in the digest, once alone)."""

from __future__ import annotations

from pathlib import Path

from syndicate.runtime import Runtime
from syndicate.scheduling import jobs
from tests.support.cli import run_cli
from tests.support.scheduling import outbox, readers, utc
from tests.test_digest_cancel import digest_of_two


def test_send_refuses_a_post_the_digest_already_took_to_readers(project: Path) -> None:
    cfg, engine, _, monday = digest_of_two(project)
    report = jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 28, 12, 1))
    assert [s.sent for s in report.summaries] == [readers(project)]
    before = len(outbox(project))

    done = run_cli(project, "send", str(monday))

    alone = [m for m in outbox(project)[before:] if "Monday thoughts" in str(m["Subject"])]
    assert (done.returncode, len(alone)) == (1, 0), (done.stdout, done.stderr)


def test_send_refuses_a_post_waiting_in_an_unsent_digest(project: Path) -> None:
    cfg, engine, _, monday = digest_of_two(project)

    done = run_cli(project, "send", str(monday))
    jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 28, 12, 1))

    got = [str(m["To"]) for m in outbox(project)]
    assert done.returncode == 1 and len(got) == len(set(got)), (done.stdout, done.stderr, got)
