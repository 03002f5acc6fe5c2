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
    assert (serve.WEB_DEFAULT_HOST, serve.WEB_DEFAULT_PORT) == (
        settings.Web().host,
        settings.Web().port,
    )


def test_a_lazily_loaded_module_is_the_real_module() -> None:
    script = """
import sys
import syndicate.cli
from syndicate.cli import status
assert "sqlalchemy" not in sys.modules
import syndicate.store
from syndicate import store
assert status.store is store is syndicate.store is sys.modules["syndicate.store"]
assert callable(syndicate.store.now) and "sqlalchemy" in sys.modules
print("ok")
"""
    assert _python(script).strip() == "ok"
