"""`syndicate send`: dry run, a [TEST] copy that records nothing, the real send, and no repeat."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

from syndicate import db, settings
from syndicate.feedwatch import watch
from tests.support.cli import run_cli


def test_send_dry_run_test_copy_then_real_send(project: Path) -> None:
    cfg = settings.load(project / "settings.toml")
    engine = db.connect(cfg.database_url)
    watch.poll(engine, cfg)
    outbox = project / "outbox"

    dry = run_cli(project, "send", "latest", "--channel", "newsletter", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would go to 4 reader(s) via outbox" in " ".join(dry.stdout.split())
    assert not outbox.exists()

    test = run_cli(project, "send", "latest", "--test", "me@example.org")
    assert test.returncode == 0, test.stderr
    [copy] = list(outbox.glob("*.eml"))
    msg = BytesParser(policy=policy.default).parsebytes(copy.read_bytes())
    assert msg["To"].addresses[0].addr_spec == "me@example.org"
    assert msg["Subject"] == "[TEST] The job is not the work — and that’s the point"
    with engine.connect() as conn:
        assert all(not db.deliveries.delivery_counts(conn, s.id) for s in db.sends.list_sends(conn))
    copy.unlink()

    real = run_cli(project, "send", "latest", "--channel", "newsletter")
    assert real.returncode == 0, real.stderr
    assert "4 sent, 0 deferred, 0 failed, 0 skipped" in " ".join(real.stdout.split())
    assert len(list(outbox.glob("*.eml"))) == 4

    again = run_cli(project, "send", "latest", "--channel", "newsletter")
    assert again.returncode == 0
    assert "is already done; nobody gets it twice" in " ".join(again.stdout.split())
    assert "0 sent" not in again.stdout and len(list(outbox.glob("*.eml"))) == 4

    bad = run_cli(project, "send", "latest", "--test", "not an address")
    assert bad.returncode == 1 and "--test needs an email address" in bad.stderr
