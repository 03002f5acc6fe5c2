"""`syndicate replies push`: comments posted as pending to a WordPress REST API. The API is a
small local HTTP server that answers like WordPress does (no WordPress can run in the tests)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from syndicate.inbound import pipeline
from syndicate.runtime import Runtime
from tests.support.inbound import cli, edit, fixture, load, sent_project
from tests.support.web import QuietHandler, serving_http

APP_PASSWORD = "abcd efgh ijkl mnop"


class FakeWordPress(QuietHandler):
    comments: ClassVar[list[dict]] = []

    def _authorised(self) -> bool:
        expected = base64.b64encode(f"jane:{APP_PASSWORD}".encode()).decode()
        return self.headers.get("Authorization") == f"Basic {expected}"

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if not self._authorised():
            return self._reply(401, {"code": "rest_not_logged_in"})
        slug = parse_qs(url.query).get("slug", [""])[0]
        found = [{"id": 42}] if slug == "the-job-is-not-the-work" else []
        return self._reply(200, found)

    def do_POST(self) -> None:
        if not self._authorised():
            return self._reply(401, {"code": "rest_not_logged_in"})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.comments.append(body)
        return self._reply(201, {"id": 1000 + len(self.comments), "status": body["status"]})


@pytest.fixture
def wordpress():
    FakeWordPress.comments = []
    with serving_http(FakeWordPress) as base:
        yield base, FakeWordPress.comments


def test_push_posts_each_comment_as_pending(
    tmp_path: Path, wordpress, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = wordpress
    project = sent_project(tmp_path / "project")
    config = project / "settings.toml"
    edit(config, 'url = ""\n# The WordPress user', f'url = "{url}"\n# The WordPress user')
    edit(
        config,
        'username = ""\n# Name of the environment variable holding the WordPress',
        'username = "jane"\n# Name of the environment variable holding the WordPress',
    )
    settings, engine, key = load(project)
    for name in ("gmail_de.eml", "editor_reply.eml"):
        pipeline.process(Runtime(settings, engine=engine, key=key), fixture(name), source="test")
    refused = cli(project, "replies", "push")
    assert refused.returncode == 1
    assert b"SYNDICATE_WORDPRESS_PASSWORD" in refused.stderr
    monkeypatch.setenv("SYNDICATE_WORDPRESS_PASSWORD", APP_PASSWORD)
    result = cli(project, "replies", "push")
    assert result.returncode == 0, result.stderr.decode()
    assert b": 1001" in result.stdout
    [comment] = received  # the editor's answer is not a public comment
    assert comment["post"] == 42
    assert comment["status"] == "hold"
    assert comment["author_email"] == "d.nakamura@example.net"
    assert comment["content"].startswith("Ein schöner Text.")
