"""Client-support lint: our emails against the caniemail database, as CI runs it.

tools/emaillint/lint.mjs runs @jsx-email/doiuse-email on every example edition, a digest of the
example posts, the web confirmation email and an edition whose body is one plain paragraph (our
templates alone), for Gmail, Outlook, Apple Mail, Yahoo and Samsung. Every "not supported"
finding must be in tools/emaillint/accepted.toml with the reason it is harmless.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from syndicate.audience import optin
from syndicate.render import make_environment
from syndicate.render.digest import digest_post
from tests.support.edition import (
    ROOT,
    SEND_DATE,
    example_posts,
    make_post,
    newsletter,
    require_tool,
    shipped_settings,
)
from tests.support.tools import missing

LINT = ROOT / "tools" / "emaillint"
TEMPLATES_ONLY = "templates-only.html"


@dataclass(frozen=True)
class Accepted:
    feature: str
    clients: frozenset[str]
    reason: str


def accepted_findings() -> list[Accepted]:
    raw = tomllib.loads((LINT / "accepted.toml").read_text(encoding="utf-8"))
    return [Accepted(e["feature"], frozenset(e["clients"]), e["reason"]) for e in raw["accepted"]]


def install_lint() -> None:
    """`npm ci` from the lock file where a checkout lacks node_modules (.ci/run does it too)."""
    if (LINT / "node_modules" / "@jsx-email" / "doiuse-email").is_dir():
        return
    npm = require_tool("npm")
    done = subprocess.run(
        [npm, "ci", "--prefix", str(LINT), "--no-audit", "--no-fund", "--prefer-offline"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        missing(f"the email lint is not installed (npm ci --prefix tools/emaillint): {done.stderr}")


def run_lint(files: list[Path]) -> dict[str, list[tuple[str, str]]]:
    """Each file's "not supported" findings as (feature, client) pairs."""
    node = require_tool("node")
    install_lint()
    done = subprocess.run(
        [node, str(LINT / "lint.mjs"), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    return {
        Path(name).name: [(feature, client) for feature, client in found["unsupported"]]
        for name, found in report.items()
    }


def unexplained(findings: dict[str, list[tuple[str, str]]], accepted: list[Accepted]) -> list[str]:
    problems = []
    for name, pairs in findings.items():
        for feature, client in pairs:
            if not any(a.feature == feature and client in a.clients for a in accepted):
                problems.append(f"{name}: `{feature}` is not supported by {client}")
    return problems


def stale(findings: dict[str, list[tuple[str, str]]], accepted: list[Accepted]) -> list[str]:
    """Accepted findings seen in no document."""
    seen = {pair for pairs in findings.values() for pair in pairs}
    return [
        f"{a.feature} in {client}"
        for a in accepted
        for client in sorted(a.clients)
        if (a.feature, client) not in seen
    ]


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("emails")
    settings = shipped_settings()
    env = make_environment(ROOT / "templates")
    posts = example_posts()
    pages = {f"edition-{n}.html": newsletter(post).html for n, post in enumerate(posts, 1)}
    digest = replace(digest_post(posts, settings, env, SEND_DATE), id=100)
    pages["digest.html"] = newsletter(digest).html
    confirm = optin.build_message(
        settings, env, "zoe@example.org", "Zoë", "https://notes.example.com/confirm/x"
    )
    pages["confirm.html"] = confirm.content.html
    pages[TEMPLATES_ONLY] = newsletter(make_post("<p>One plain paragraph.</p>")).html
    for name, html in pages.items():
        (folder / name).write_text(html, encoding="utf-8")
    return [folder / name for name in pages]


def test_every_unsupported_feature_is_explained(documents: list[Path]) -> None:
    accepted = accepted_findings()
    assert all(a.reason.strip() and a.clients for a in accepted)
    findings = run_lint(documents)
    assert set(findings) == {d.name for d in documents}
    problems = unexplained(findings, accepted)
    assert not problems, "new client-support findings:\n" + "\n".join(problems)

    old = stale(findings, accepted)
    assert not old, "accepted.toml lists findings that no longer occur: " + ", ".join(old)


def test_the_lint_catches_what_broke_outlook_and_yahoo(tmp_path: Path) -> None:
    """The old edition's box-sizing padding, HTML5 tags and overflow-wrap are findings."""
    page = tmp_path / "old.html"
    page.write_text(
        '<!DOCTYPE html><html><body><div style="box-sizing:border-box;padding:32px;'
        'overflow-wrap:break-word"><figure><img src="a.png" alt="A"><figcaption>A</figcaption>'
        "</figure><time>Today</time></div></body></html>",
        encoding="utf-8",
    )
    problems = unexplained(run_lint([page]), accepted_findings())
    text = "\n".join(problems)
    assert "`box-sizing` is not supported by outlook.windows" in text
    assert "`box-sizing` is not supported by yahoo.desktop-webmail" in text
    assert "`overflow-wrap` is not supported by gmail.desktop-webmail" in text
    assert "`HTML5 semantics` is not supported by yahoo.desktop-webmail" in text
    assert "`HTML5 semantics` is not supported by outlook.windows" in text


def test_an_accepted_finding_that_no_longer_occurs_is_reported() -> None:
    accepted = [Accepted("@media", frozenset({"outlook.windows", "gmail.mobile-webmail"}), "r")]
    findings = {"edition.html": [("@media", "outlook.windows")]}
    assert stale(findings, accepted) == ["@media in gmail.mobile-webmail"]
    assert unexplained(findings, accepted) == []
    assert unexplained({"edition.html": [("@media", "yahoo.ios")]}, accepted) == [
        "edition.html: `@media` is not supported by yahoo.ios"
    ]
