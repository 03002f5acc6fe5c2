"""The desk renders with the Runtime's one Jinja environment, and every desk page is escaped."""

from __future__ import annotations

from pathlib import Path

import pytest

from syndicate.desk.app import escaped_template
from syndicate.runtime import Runtime
from syndicate.settings import packaged
from syndicate.web.app import create_app
from tests.support.desk import ORIGIN, SECRET, TestClient, use_base_url
from tests.support.web_client import load_settings


@pytest.fixture(autouse=True)
def desk_ready(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", SECRET)
    use_base_url(project)


def test_the_desk_renders_with_the_runtimes_environment(project: Path) -> None:
    # An author's copy of a desk page that names a value only the runtime's environment has:
    # an environment of the desk's own would fail on it (StrictUndefined).
    own = project / "templates" / "desk"
    own.mkdir(parents=True, exist_ok=True)
    (own / "setup.html.j2").write_text("<p>{{ probe }} {{ '<b>' }}</p>\n")
    runtime = Runtime(load_settings(project))
    runtime.templates.globals["probe"] = "one environment"
    client = TestClient(create_app(runtime), base_url=ORIGIN)
    page = client.get("/desk/login")  # no password yet: the setup page
    assert page.status_code == 200
    assert "<p>one environment &lt;b&gt;</p>" in page.text


def test_every_desk_page_is_autoescaped(project: Path) -> None:
    env = Runtime(load_settings(project)).templates
    names = sorted(p.name for p in packaged("templates").joinpath("desk").glob("*"))
    assert "reply.html.j2" in names
    for name in names:
        template = escaped_template(env, f"desk/{name}")
        assert template.environment is env


def test_a_desk_page_that_would_not_be_escaped_is_refused(project: Path) -> None:
    own = project / "templates" / "desk"
    own.mkdir(parents=True, exist_ok=True)
    (own / "plain.txt").write_text("{{ value }}\n")
    env = Runtime(load_settings(project)).templates
    with pytest.raises(RuntimeError, match=r"desk/plain.txt: a desk page must be a \.html\.j2"):
        escaped_template(env, "desk/plain.txt")
