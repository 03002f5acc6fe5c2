"""The command line starts fast because heavy libraries load only where a command uses them.

No timing here (bench/startup.py measures): a fresh interpreter builds the whole Typer app and
renders every command's --help, then lists which heavy modules got imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# What a command pays for only when it uses it: ~1.5 s and ~60 MB together.
HEAVY = {
    "apscheduler",
    "dkim",
    "dns",
    "docx",
    "feedparser",
    "httpx",
    "jinja2",
    "lxml",
    "premailer",
    "pydantic",
    "sqlalchemy",
    "uvicorn",
}

EVERY_HELP = """
import json, sys
import typer.main
from syndicate.cli import app

def walk(command, ctx, names):
    names.append(ctx.command_path)
    assert command.get_help(ctx)
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            walk(sub, sub.context_class(sub, info_name=name, parent=ctx), names)

root = typer.main.get_command(app)
names = []
walk(root, root.context_class(root, info_name="syndicate"), names)
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[1])))
print(json.dumps({"helped": names, "heavy": heavy}))
"""


def _python(script: str, *args: str, stdin: bytes = b"", cwd: Path | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def test_every_help_page_renders_without_a_heavy_import() -> None:
    result = json.loads(_python(EVERY_HELP, json.dumps(sorted(HEAVY))))
    # The walk really reached the commands (a broken walk would prove nothing).
    for command in (
        "syndicate",
        "syndicate status",
        "syndicate inbound receive",
        "syndicate serve",
    ):
        assert command in result["helped"]
    assert len(result["helped"]) > 20
    assert result["heavy"] == []


def test_help_defaults_spelled_out_in_the_cli_match_the_settings() -> None:
    from syndicate import settings
    from syndicate.cli import common, serve

    assert common.DEFAULT_CONFIG == settings.DEFAULT_CONFIG
    assert (
        settings.Web().host,
        settings.Web().port,
    ) == (serve.WEB_DEFAULT_HOST, serve.WEB_DEFAULT_PORT)


def test_a_lazily_loaded_module_is_the_real_module() -> None:
    script = """
import sys
import syndicate.cli
from syndicate.cli import status
assert "sqlalchemy" not in sys.modules
assert status.db is sys.modules["syndicate.db"]
import syndicate.db.sends
from syndicate import db
assert db.sends is syndicate.db.sends is sys.modules["syndicate.db.sends"]
assert callable(db.sends.get_send) and "sqlalchemy" in sys.modules
print("ok")
"""
    assert _python(script).strip() == "ok"


IN_PROCESS = """
import json, sys
from syndicate.cli import main
heavy_names = set(json.loads(sys.argv[1]))
sys.argv = ["syndicate", *sys.argv[2:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & heavy_names)
print(json.dumps({"code": code, "heavy": heavy}))
"""


def _run_command(project: Path, heavy: set[str], *args: str, stdin: bytes = b"") -> dict:
    """Run `syndicate ARGS` in a fresh interpreter; its exit code and the heavy modules it
    imported. The command's own stdout comes first; the JSON summary is the last line."""
    out = _python(IN_PROCESS, json.dumps(sorted(heavy)), *args, stdin=stdin, cwd=project)
    return json.loads(out.strip().splitlines()[-1])


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    subprocess.run(
        [sys.executable, "-m", "syndicate", "init", str(project), "--email", "me@example.com"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return project


# Filing a reply needs the database and the settings, never the renderers, the feed reader or
# an HTTP client: an MTA starts one process per message.
NOT_FOR_A_REPLY = {
    "apscheduler",
    "dkim",
    "docx",
    "feedparser",
    "httpx",
    "jinja2",
    "lxml",
    "premailer",
}


def test_inbound_receive_files_a_reply_without_the_renderers(tmp_path: Path) -> None:
    project = _project(tmp_path)
    reply = (
        b"From: Ann Reader <ann@example.org>\r\nTo: replies@example.com\r\n"
        b"Subject: Re: the column\r\nMessage-ID: <startup-1@example.org>\r\n\r\nThank you.\r\n"
    )
    result = _run_command(project, NOT_FOR_A_REPLY, "inbound", "receive", stdin=reply)
    assert result == {"code": 0, "heavy": []}
    # It was really filed (a receive that failed early would import nothing either).
    listed = subprocess.run(
        [sys.executable, "-m", "syndicate", "replies", "list", "--json"],
        cwd=project,
        capture_output=True,
        timeout=60,
    )
    [filed] = json.loads(listed.stdout)
    assert (filed["sender"], filed["text"], filed["source"]) == (
        "ann@example.org",
        "Thank you.",
        "stdin",
    )


def test_status_reads_the_database_without_the_feed_reader_or_the_renderers(
    tmp_path: Path,
) -> None:
    result = _run_command(_project(tmp_path), NOT_FOR_A_REPLY, "status")
    assert result == {"code": 0, "heavy": []}
