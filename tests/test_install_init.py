"""Installing without the source tree: build the wheel, install it in a fresh venv outside the
checkout, `syndicate init` a project folder and `run --once` against a local feed file.

Deliberately heavy (a wheel build and a venv, ~20-40 s). The fresh venv gets syndicate from the
wheel alone (--no-deps, no index); its dependencies come from this test run's own environment
through a path line, which adds no `.pth` processing, so the checkout's editable install is not
visible to it (asserted below).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

SOURCES = ("syndicate", "templates", "examples", "pyproject.toml", "setup.py", "MANIFEST.in")


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv holding syndicate from a wheel built from a copy of the sources."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    source.mkdir()
    for name in (*SOURCES, "settings.toml", "README.md"):
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, source / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(source)], base, env)
    [wheel] = (base / "dist").glob("syndicate-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "syndicate/_skeleton/settings.toml" in names
    assert "syndicate/_skeleton/templates/email/edition.html.j2" in names
    assert "syndicate/_skeleton/examples/feed.xml" in names
    # Alembic's environment and revisions: every command migrates the database on open.
    assert "syndicate/db/migrations/env.py" in names
    assert "syndicate/db/migrations/script.py.mako" in names
    assert "syndicate/db/migrations/versions/0001_baseline.py" in names

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base, env)
    python = venv / "bin" / "python"
    _run(
        [*pip, "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        base,
        env,
    )
    fresh = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(fresh) / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    where = _run([str(python), "-c", "import syndicate; print(syndicate.__file__)"], base, env)
    assert where.stdout.strip().startswith(str(venv)), where.stdout
    return venv / "bin"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def test_init_then_run_once_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    feed = tmp_path / "blog-feed.xml"
    shutil.copy(ROOT / "examples" / "feed.xml", feed)
    env = _env()
    made = _run(
        [
            str(installed / "syndicate"),
            "init",
            "column",
            "--feed",
            str(feed),
            "--author",
            "Ann Lee",
            "--email",
            "ann@example.org",
        ],
        tmp_path,
        env,
    )
    project = tmp_path / "column"
    assert "syndicate run --once" in made.stdout
    assert "[site], [mail], [transport]" in made.stdout  # section names printed, not eaten
    assert (project / "settings.toml").is_file() and (project / "templates").is_dir()
    assert (project / "subscribers" / "readers.csv").read_text() == "email,name\n"
    assert (project / "subscribers" / "editors.csv").read_text().startswith("email,name,")
    settings = (project / "settings.toml").read_text()
    assert f'source = "{feed}"' in settings and 'name = "Ann Lee"' in settings
    assert "# The blog's RSS or Atom feed" in settings  # the annotated file, comments kept

    with (project / "subscribers" / "readers.csv").open("a") as readers:
        readers.write("reader@example.net,Rita Reader\n")
    # A template in the folder overrides the shipped one; the others still come from syndicate.
    override = project / "templates" / "email" / "edition.txt.j2"
    override.parent.mkdir(parents=True)
    override.write_text("OVERRIDDEN {{ post.title }}\n")

    ran = _run([str(installed / "syndicate"), "run", "--once"], project, env)
    assert "Send 1 (newsletter)" in ran.stdout and "1 sent" in ran.stdout, ran.stdout
    [eml] = (project / "outbox").glob("*.eml")
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert message["To"].addresses[0].addr_spec == "reader@example.net"
    assert message.get_body(("plain",)).get_content().startswith("OVERRIDDEN The job is not")
    assert "<html" in message.get_body(("html",)).get_content()  # the shipped HTML template

    again = _run([str(installed / "syndicate"), "run", "--once"], project, env)
    assert "Nothing to send." in again.stdout


def test_init_without_a_feed_uses_the_shipped_example_and_never_overwrites(
    installed: Path, tmp_path: Path
) -> None:
    env = _env()
    _run([str(installed / "syndicate"), "init", "demo"], tmp_path, env)
    assert (tmp_path / "demo" / "examples" / "feed.xml").is_file()
    ran = _run([str(installed / "syndicate"), "run", "--once"], tmp_path / "demo", env)
    assert "First run: 5 post(s)" in ran.stdout

    again = subprocess.run(
        [str(installed / "syndicate"), "init", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr

    lost = subprocess.run(
        [str(installed / "syndicate"), "status"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert lost.returncode == 1 and "syndicate init FOLDER" in lost.stderr
