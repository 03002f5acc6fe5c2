"""Subscribers on the desk: search, counts, one person's history, the author's unsubscribe and
resubscribe (recorded), the CSV import with the CLI's own report, the export, and the charts."""

from __future__ import annotations

import html
import re
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from syndicate import db
from syndicate.cli import app as cli_app
from syndicate.desk import charts
from tests.support.desk import SAME, client_for, engine_of, login, sent_desk
from tests.support.inbound import copy_project

IMPORTS = Path(__file__).parent / "fixtures" / "imports"


@pytest.fixture
def desk_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example project after one send: its lists loaded, deliveries recorded."""
    return sent_desk(tmp_path / "project", monkeypatch)


def cli(project: Path, *args: str) -> str:
    result = CliRunner().invoke(cli_app, ["--config", str(project / "settings.toml"), *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def person(project: Path, email: str) -> dict:
    with engine_of(project).connect() as conn:
        [row] = [r for r in db.recipients.recipients_by_email(conn, email) if r.kind == "reader"]
    return asdict(row)


def without_times(csv_text: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", "TIME", csv_text)


def text_of(page: str) -> list[str]:
    """The import report's lines as a person reads them."""
    lines = re.findall(r'<p class="report-line">(.*?)</p>', page, re.S)
    return [html.unescape(" ".join(line.split())) for line in lines]


def test_search_and_counts(desk_project: Path) -> None:
    client = client_for(desk_project)
    login(client)
    page = client.get("/desk/subscribers").text
    with engine_of(desk_project).connect() as conn:
        readers = db.recipients.count_recipients(conn)["reader"]["active"]
    assert f"{readers} active" in page
    assert "by source:" in page and "list" in page
    found = client.get("/desk/subscribers?q=MARGARET.H").text
    assert "margaret.holloway@example.com" in found and "zoe.perez@example.org" not in found
    by_name = client.get("/desk/subscribers", params={"q": "zoë pé"}).text
    assert "zoe.perez@example.org" in by_name
    wildcard = client.get("/desk/subscribers", params={"q": "%"}).text
    assert "margaret.holloway" not in wildcard, "a % is a character, not a wildcard"
    editors = client.get("/desk/subscribers?kind=editor").text
    assert "margaret.holloway" not in editors and "opinion@dailyherald" in editors


def test_one_persons_history_and_the_authors_changes_are_recorded(desk_project: Path) -> None:
    client = client_for(desk_project)
    csrf = login(client)
    jane = person(desk_project, "margaret.holloway@example.com")
    page = client.get(f"/desk/subscribers/{jane['id']}").text
    assert "sent" in page and "/desk/posts/" in page, "her delivery is listed"
    answer = client.post(
        f"/desk/subscribers/{jane['id']}/unsubscribe",
        data={"csrf": csrf},
        headers=SAME,
        follow_redirects=False,
    )
    assert answer.status_code == 303
    gone = person(desk_project, "margaret.holloway@example.com")
    assert gone["status"] == "unsubscribed"
    assert gone["unsubscribe_reason"] == "by the author, on the desk"
    client.post(f"/desk/subscribers/{jane['id']}/resubscribe", data={"csrf": csrf}, headers=SAME)
    back = person(desk_project, "margaret.holloway@example.com")
    assert back["status"] == "active" and back["unsubscribed_at"] is None
    page = client.get(f"/desk/subscribers/{jane['id']}").text
    assert "active → unsubscribed, by the author, on the desk" in page
    assert "unsubscribed → active, by the author, on the desk" in page
    assert client.get("/desk/subscribers/999999").status_code == 404


def test_a_spam_complaint_is_not_undone_by_the_desk(desk_project: Path) -> None:
    client = client_for(desk_project)
    csrf = login(client)
    jane = person(desk_project, "margaret.holloway@example.com")
    with engine_of(desk_project).begin() as conn:
        db.recipients.mark_recipient(conn, jane["id"], "complained", "spam report")
    refused = client.post(
        f"/desk/subscribers/{jane['id']}/resubscribe", data={"csrf": csrf}, headers=SAME
    )
    assert refused.status_code == 400 and "reported a newsletter as spam" in refused.text
    assert person(desk_project, "margaret.holloway@example.com")["status"] == "complained"


def test_csv_import_reports_and_lands_as_the_cli_does(desk_project: Path, tmp_path: Path) -> None:
    twin = copy_project(desk_project, tmp_path / "twin")  # with a copy of its database
    client = client_for(desk_project)
    csrf = login(client)
    for name in ("mailchimp_subscribed.csv", "mailchimp_unsubscribed.csv"):
        data = (IMPORTS / name).read_bytes()
        answer = client.post(
            "/desk/subscribers/import",
            data={"csrf": csrf, "kind": "reader"},
            files={"file": (name, data, "text/csv")},
            headers=SAME,
        )
        assert answer.status_code == 200, answer.text
        ours = text_of(answer.text)
        copy = tmp_path / name
        copy.write_bytes(data)
        theirs = [
            " ".join(line.split())
            for line in cli(twin, "subscribers", "import", str(copy)).splitlines()
        ]
        assert ours[0] == theirs[0].replace(str(copy), name)
        assert ours[1:] == theirs[1:], name
        assert "mailchimp export" in ours[0]
    ours, theirs = cli(desk_project, "subscribers", "export"), cli(twin, "subscribers", "export")
    assert without_times(ours) == without_times(theirs)


def test_import_dry_run_and_unreadable_files_change_nothing(desk_project: Path) -> None:
    client = client_for(desk_project)
    csrf = login(client)
    before = cli(desk_project, "subscribers", "export")
    dry = client.post(
        "/desk/subscribers/import",
        data={"csrf": csrf, "kind": "reader", "dry_run": "yes"},
        files={"file": ("x.csv", (IMPORTS / "substack.csv").read_bytes(), "text/csv")},
        headers=SAME,
    )
    assert "would be added" in dry.text and "dry run: nothing was written" in dry.text
    bad = client.post(
        "/desk/subscribers/import",
        data={"csrf": csrf, "kind": "reader"},
        files={"file": ("../../etc/passwd", (IMPORTS / "no_email_column.csv").read_bytes())},
        headers=SAME,
    )
    assert bad.status_code == 400 and "Traceback" not in bad.text
    assert "passwd.csv:" in bad.text, "the file is named by its own name, never a path"
    none = client.post("/desk/subscribers/import", data={"csrf": csrf}, headers=SAME)
    assert none.status_code == 400 and "Choose a CSV file" in none.text
    assert cli(desk_project, "subscribers", "export") == before


def test_export_is_the_clis_export(desk_project: Path) -> None:
    client = client_for(desk_project)
    login(client)
    everyone = client.get("/desk/subscribers/export.csv")
    assert everyone.headers["content-type"].startswith("text/csv")
    assert 'filename="subscribers.csv"' in everyone.headers["content-disposition"]
    assert everyone.text == cli(desk_project, "subscribers", "export")
    editors = client.get("/desk/subscribers/export.csv?kind=editor").text
    assert editors == cli(desk_project, "subscribers", "export", "--kind", "editor")


def test_growth_counts_each_week_and_says_so_in_words() -> None:
    def at(day: int) -> datetime:
        return datetime(2026, 11, day, 12, tzinfo=UTC)

    weeks = charts.weeks([at(2), at(3), at(9), at(30)], [at(4), at(30)], date(2026, 12, 2), 5)
    assert [w.monday for w in weeks][-1] == date(2026, 11, 30)
    assert [(w.joined, w.left) for w in weeks] == [(2, 1), (1, 0), (0, 0), (0, 0), (1, 1)]
    svg = str(charts.growth(weeks))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert "4 joined, 2 left in 5 weeks" in svg
    assert "week of 02 Nov: +2 −1" in svg
    bar = str(charts.outcome({"sent": 3, "failed": 1}, "Send <1>"))
    assert 'width="90.0"' in bar and 'width="30.0"' in bar
    assert "Send &lt;1&gt;" in bar and "<1>" not in bar


def test_home_and_subscribers_pages_draw_their_charts(desk_project: Path) -> None:
    client = client_for(desk_project)
    login(client)
    home = client.get("/desk/").text
    assert '<svg class="bar"' in home and "sent, 0 deferred" in home
    page = client.get("/desk/subscribers").text
    assert '<svg class="chart"' in page and "Readers per week" in page


def test_only_the_upload_takes_a_large_body(desk_project: Path) -> None:
    client = client_for(desk_project)
    csrf = login(client)
    big = "x" * 200_000  # over [web] max_body_bytes, under [desk] max_upload_bytes
    login_flood = client.post("/desk/login", data={"csrf": "x", "password": big}, headers=SAME)
    assert login_flood.status_code == 413
    answer = client.post("/desk/replies/1/answer", data={"csrf": csrf, "text": big}, headers=SAME)
    assert answer.status_code == 413
    upload = client.post(
        "/desk/subscribers/import",
        data={"csrf": csrf, "kind": "reader", "dry_run": "yes"},
        files={"file": ("big.csv", ("email\n" + "a@example.com\n" * 20_000).encode())},
        headers=SAME,
    )
    assert upload.status_code == 200 and "would be added" in upload.text
