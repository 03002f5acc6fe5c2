"""review3: a correction claimed by a process in another PID namespace under the same host
name (two containers of one Kubernetes pod, `docker run --network host`, a restarted container)
is never judged by its pid here: before syndicate.machine, "no such pid here" read as "died",
and every editor got the advisory twice while the first send was still going."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from syndicate import db
from syndicate.corrections import rows
from syndicate.runtime import Runtime
from syndicate.scheduling import jobs
from tests import test_corrections_flow as flow
from tests.test_corrections_flow import BEFORE_RELEASE, BODY, messages, poll

feed, delivered = flow.feed, flow.delivered  # the fixtures

# The live sender: a process in its own PID namespace (same host name, same files), given a
# PID this namespace does not use, that prints the claim name it would write and waits.
SENDER = (
    "echo {pid} > /proc/sys/kernel/ns_last_pid; "
    '{python} -c "import sys; from syndicate.delivery import workers; '
    'print(workers.claimer_name(), flush=True); sys.stdin.read()"; true'
)


def free_pid() -> int:
    for pid in range(54320, 60000):
        if subprocess.run(["kill", "-0", str(pid + 1)], capture_output=True).returncode:
            return pid
    raise AssertionError("no free pid")


def test_a_live_sender_in_another_pid_namespace_is_not_judged_dead(delivered) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    cfg, engine, handler, blog, _ = delivered
    blog.posts[2] = ("Walls and bread", BODY)
    [correction] = poll(cfg, engine, BEFORE_RELEASE)
    sender = subprocess.Popen(
        [
            "unshare",
            "-Urpf",
            "--mount-proc",
            "sh",
            "-c",
            SENDER.format(pid=free_pid(), python=sys.executable),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sender.stdout is not None
        claimer = sender.stdout.readline().strip()
        assert claimer.count(":") >= 2, claimer
        with engine.begin() as conn:  # the live process claimed it and is sending
            db.corrections.set_state(
                conn,
                correction.id,
                rows.CorrectionState.SENDING,
                updated_at=BEFORE_RELEASE,
                claimed_by=claimer,
            )
        jobs.tick(Runtime(cfg, engine=engine), at=BEFORE_RELEASE + timedelta(minutes=1))
        assert sender.poll() is None  # still alive, still sending
        assert messages(handler, "UPDATED: ") == []
    finally:
        sender.kill()
        sender.wait()


# A daemon's tick in a fresh PID namespace, where it is PID 1 (a container's `syndicate run`).
TICK = (
    "import sys; from datetime import datetime; from syndicate import db, settings; "
    "from syndicate.runtime import Runtime; from syndicate.scheduling import jobs; "
    "cfg = settings.load(sys.argv[1]); "
    "jobs.tick(Runtime(cfg, engine=db.connect(cfg.database_url)), "
    "at=datetime.fromisoformat(sys.argv[2]))"
)
CLAIMER = "from syndicate.delivery import workers; print(workers.claimer_name())"


def test_a_restarted_container_daemon_leaves_its_killed_runs_advisory_to_the_hour(
    delivered, project
) -> None:
    """A daemon that is PID 1 in its container (docker run … syndicate run) has the same PID
    after a restart but a new PID namespace: the claim its killed run left names another
    machine (syndicate.machine), so it is not judged here and goes out after the hour, once,
    like any claim from another machine. (Were the PID alone compared, the restarted daemon,
    PID 1 again, would take it for a send of its own in flight.)"""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    cfg, engine, handler, blog, _ = delivered
    blog.posts[2] = ("Walls and bread", BODY)
    [correction] = poll(cfg, engine, BEFORE_RELEASE)
    container = ["unshare", "-Urpf", "--mount-proc", sys.executable, "-c"]
    killed_run = subprocess.run([*container, CLAIMER], capture_output=True, text=True, check=True)
    claimer = killed_run.stdout.strip()
    assert claimer.split(":")[-2] == "1"  # PID 1 in its container; that run is gone now
    with engine.begin() as conn:
        db.corrections.set_state(
            conn,
            correction.id,
            rows.CorrectionState.SENDING,
            updated_at=BEFORE_RELEASE,
            claimed_by=claimer,
        )

    def restarted_tick(at: datetime) -> None:
        done = subprocess.run(
            [*container, TICK, str(project / "settings.toml"), at.isoformat()],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr

    restarted_tick(BEFORE_RELEASE + timedelta(minutes=1))
    assert messages(handler, "UPDATED: ") == []
    restarted_tick(BEFORE_RELEASE + timedelta(hours=2))
    assert len(messages(handler, "UPDATED: ")) == 2
