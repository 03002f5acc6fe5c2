"""The command line starts fast because heavy libraries load only where a command uses them.

No timing here (bench/startup.py measures): fresh interpreters run a command, or render every
command's --help, then list which modules got imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from syndicate import db
from tests.support.postgres import database_url_of
from tests.support.revisions import by_revisions

# What a command pays for only when it uses it: ~1.5 s and ~60 MB together.
HEAVY = {
    "alembic",
    "apscheduler",
    "argon2",
    "dkim",
    "dns",
    "docx",
    "email_validator",
    "feedparser",
    "html2text",
    "httpx",
    "imapclient",
    "itsdangerous",
    "jinja2",
    "lxml",
    "nh3",
    "premailer",
    "pydantic",
    "sendgrid",
    "smartypants",
    "sqlalchemy",
    "starlette",
    "uvicorn",
}
# Filing a reply or showing the status needs the database and the settings, never the
# renderers, the feed reader, an HTTP client or Alembic (the database is up to date): an MTA
# starts one process per message.
NOT_FOR_A_REPLY = HEAVY - {"dns", "pydantic", "sqlalchemy", "uvicorn"}

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
    result = json.loads(_python(EVERY_HELP, json.dumps(sorted(HEAVY - {"pydantic"}))))
    # The walk really reached the commands (a broken walk would prove nothing).
    for command in (
        "syndicate",
        "syndicate status",
        "syndicate inbound receive",
        "syndicate serve",
    ):
        assert command in result["helped"]
    assert len(result["helped"]) > 20
    # pydantic: typer itself builds its parameter validators with it for a command's --help.
    assert result["heavy"] == []


IN_PROCESS = """
import json, sys
from syndicate.cli import main
sys.argv = ["syndicate", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _run_command(*args: str, project: Path | None = None, stdin: bytes = b"") -> dict:
    """Run `syndicate ARGS` in a fresh interpreter; its exit code and every module it imported.
    The command's own stdout comes first; the JSON summary is the last line."""
    out = _python(IN_PROCESS, *args, stdin=stdin, cwd=project)
    return json.loads(out.strip().splitlines()[-1])


def _packages(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_help_lists_every_command_without_importing_any_or_a_heavy_library() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "syndicate", "--help"], capture_output=True, timeout=60
    )
    from syndicate.cli import COMMANDS

    listed = done.stdout.decode().split("Commands:")[1].split()
    assert done.returncode == 0 and all(name in listed for name in COMMANDS)
    result = _run_command("--help")
    assert result["code"] == 0
    modules = result["modules"]
    # No heavy library, not rich (plain click help), not the settings models, and no module
    # of a command: each is imported when its command runs.
    assert _packages(modules) & (HEAVY | {"rich", "importlib_metadata"}) == set()
    assert "importlib.metadata" not in modules  # pydantic's plugin scan needs it
    loaded = {m for m in modules if m.startswith("syndicate.")}
    assert loaded <= {
        "syndicate.cli",
        "syndicate.cli.common",
        "syndicate.cli.lazy",
        "syndicate.db",
        "syndicate.errors",
        "syndicate.settings",  # a lazy module: its body has not run (pydantic is not imported)
    }, loaded


def test_the_help_listing_is_each_commands_own_first_sentence() -> None:
    # Every module imported: typer builds the eager group, with each command's own help.
    script = """
import importlib, json, pkgutil
import typer.main
import syndicate.cli
from syndicate.cli import COMMANDS, app
for module in pkgutil.iter_modules(syndicate.cli.__path__):
    importlib.import_module(f"syndicate.cli.{module.name}")
root = typer.main.get_command(app)
print(json.dumps({n: [c.callback.__module__ if c.callback else "", c.get_short_help_str(10**6)]
                  for n, c in root.commands.items()}))
"""
    real = json.loads(_python(script))
    from syndicate.cli import COMMANDS

    assert set(real) == set(COMMANDS)
    for name, listed in COMMANDS.items():
        module, help_line = real[name]
        assert help_line == listed.help, name
        if module:  # a command (a group's callback is typer's own)
            assert module == f"syndicate.cli.{listed.module}", name


def test_an_unknown_command_still_suggests_the_near_one() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "syndicate", "stauts"], capture_output=True, timeout=60
    )
    assert done.returncode == 2
    assert "No such command 'stauts'. Did you mean 'status'?" in done.stderr.decode()


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


def _project(tmp_path: Path, *, upgraded: bool = True) -> Path:
    """A project made by `syndicate init`; `upgraded`: its database created at the newest
    revision (Alembic runs then, and only then)."""
    project = tmp_path / "project"
    commands = [["init", str(project), "--email", "me@example.com"]]
    if upgraded:
        commands.append(["-c", str(project / "settings.toml"), "db", "upgrade"])
    for command in commands:
        subprocess.run(
            [sys.executable, "-m", "syndicate", *command],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            timeout=60,
        )
    return project


def test_inbound_receive_files_a_reply_without_the_renderers(tmp_path: Path) -> None:
    project = _project(tmp_path)
    reply = (
        b"From: Ann Reader <ann@example.org>\r\nTo: replies@example.com\r\n"
        b"Subject: Re: the column\r\nMessage-ID: <startup-1@example.org>\r\n\r\nThank you.\r\n"
    )
    result = _run_command("inbound", "receive", project=project, stdin=reply)
    assert result["code"] == 0
    assert _packages(result["modules"]) & NOT_FOR_A_REPLY == set()
    # Only its own command module: not rich's tables, not the modules of other commands.
    assert {m for m in result["modules"] if m.startswith("syndicate.cli.")} <= {
        "syndicate.cli.common",
        "syndicate.cli.inbound",
        "syndicate.cli.lazy",
    }
    assert "rich" not in _packages(result["modules"])
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


def _sqlalchemy_beyond_core(modules: list[str]) -> list[str]:
    """SQLAlchemy's ORM and extensions (syndicate writes Core; ~60 ms more to import)."""
    return [m for m in modules if m.startswith(("sqlalchemy.orm", "sqlalchemy.ext"))]


def test_status_reads_the_database_without_alembic_the_feed_reader_or_the_renderers(
    tmp_path: Path,
) -> None:
    result = _run_command("status", project=_project(tmp_path))
    assert result["code"] == 0
    assert _packages(result["modules"]) & NOT_FOR_A_REPLY == set()
    assert "sqlalchemy" in _packages(result["modules"])  # it did open the database
    assert _sqlalchemy_beyond_core(result["modules"]) == []
    # It only reads: not the sending, the renderers, the desk or the web app.
    assert {m for m in result["modules"] if m.startswith("syndicate.")} & {
        "syndicate.delivery.dispatch",
        "syndicate.desk",
        "syndicate.render",
        "syndicate.web",
    } == set()


def test_on_postgresql_at_the_newest_revision_neither_command_imports_alembic(
    tmp_path: Path, postgres_url: str
) -> None:
    # Whichever database the suite runs on: the revision check on a server database (its own
    # schema, SYNDICATE_DATABASE_URL) is one SELECT too.
    project = _project(tmp_path)
    reply = (
        b"From: Ann Reader <ann@example.org>\r\nTo: replies@example.com\r\n"
        b"Subject: Re: the column\r\nMessage-ID: <startup-pg@example.org>\r\n\r\nThanks.\r\n"
    )
    for args, stdin in ((("status",), b""), (("inbound", "receive"), reply)):
        result = _run_command(*args, project=project, stdin=stdin)
        assert result["code"] == 0, args
        packages = _packages(result["modules"])
        assert "psycopg" in packages, args  # it did talk to PostgreSQL
        assert packages & NOT_FOR_A_REPLY == set(), args
        assert _sqlalchemy_beyond_core(result["modules"]) == [], args


def test_an_empty_database_gets_its_schema_without_alembic(tmp_path: Path) -> None:
    project = _project(tmp_path, upgraded=False)
    result = _run_command("status", project=project)
    assert result["code"] == 0 and "alembic" not in _packages(result["modules"])
    assert _revision(project) == db.migrate.HEAD


def test_a_database_behind_the_newest_revision_is_upgraded_on_open(tmp_path: Path) -> None:
    # The other side of "no Alembic at the newest revision": Alembic runs the revisions missing.
    project = _project(tmp_path, upgraded=False)
    by_revisions(database_url_of(project), "0005").dispose()
    assert _revision(project) == "0005"
    result = _run_command("status", project=project)
    assert result["code"] == 0 and "alembic" in _packages(result["modules"])
    assert _revision(project) == db.migrate.HEAD


def _revision(project: Path) -> str | None:
    engine = db.connect(database_url_of(project), upgrade=False)
    try:
        with engine.connect() as conn:
            return db.migrate.current(conn)
    finally:
        engine.dispose()


def test_input_that_is_not_an_email_is_turned_away_before_the_database(tmp_path: Path) -> None:
    result = _run_command("inbound", "receive", project=tmp_path, stdin=b"\x00\x01 not mail")
    assert result["code"] == 65  # EX_DATAERR: nothing recorded, the MTA bounces it
    assert _packages(result["modules"]) & {"sqlalchemy", "alembic", "rich"} == set()
    assert "syndicate.inbound.pipeline" not in result["modules"]
    # The settings were not read: there is no settings.toml here, and nothing asked for one.
    assert not (tmp_path / "syndicate.db").exists()


def test_a_reply_handed_to_the_running_daemon_imports_no_database_settings_or_cli_library(
    tmp_path: Path,
) -> None:
    # The listener as `syndicate run` starts it, on the project's socket ([inbound] lmtp_socket).
    from syndicate import settings, settings_digest
    from syndicate.inbound.sources import lmtp
    from syndicate.runtime import Runtime

    project = _project(tmp_path)
    reply = (
        b"From: Ann Reader <ann@example.org>\r\nTo: replies@example.com\r\n"
        b"Subject: Re: the column\r\nMessage-ID: <handed-over@example.org>\r\n\r\nThanks.\r\n"
    )
    digest = settings_digest.of(project / "settings.toml")
    runtime = Runtime(settings.load(project / "settings.toml"))
    listener = lmtp.start(runtime, settings_digest=digest)
    assert listener is not None
    try:
        result = _run_command("inbound", "receive", "-r", "replies@example.com", project=project)
        result_stdin = _run_command("inbound", "receive", project=project, stdin=reply)
    finally:
        listener.stop()
        runtime.close()
    assert result["code"] == 65  # empty stdin: turned away by the pipe itself
    assert result_stdin["code"] == 0
    for modules in (result["modules"], result_stdin["modules"]):
        assert _packages(modules) & (HEAVY | {"typer", "click", "rich"}) == set()
        assert {m for m in modules if m.startswith("syndicate.")} <= {
            "syndicate.cli",
            "syndicate.errors",
            "syndicate.inbound",
            "syndicate.inbound.sources",
            "syndicate.inbound.sources.handover",
            "syndicate.inbound.sources.stdin",
            "syndicate.settings_digest",
        }
    # It was filed, by the daemon's listener (the pipe's own path would have imported SQLAlchemy).
    listed = subprocess.run(
        [sys.executable, "-m", "syndicate", "replies", "list", "--json"],
        cwd=project,
        capture_output=True,
        timeout=60,
    )
    [filed] = json.loads(listed.stdout)
    assert (filed["sender"], filed["text"], filed["source"]) == (
        "ann@example.org",
        "Thanks.",
        "stdin",
    )
