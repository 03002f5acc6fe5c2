"""Corrections, the advisory editors get: UPDATED, CORRECTION and KILL in every column format."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docx
import pytest
from lxml import etree

from syndicate.corrections.advisory import (
    Advisory,
    AdvisoryKind,
    headers_for,
    kind_at,
    render_advisory,
    threading_headers,
)
from syndicate.render.column import profile_defaults
from syndicate.render.editor_profile import profile_of
from tests.support.column import attachment, editor, example_post, load

NOW = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)  # a Wednesday
SENT = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)  # Monday
RELEASE = datetime(2026, 12, 5, 5, 1, tzinfo=UTC)  # Saturday 00:01 in Toronto
ALL_FORMATS = editor("desk@paper.example", formats="txt docx html nitf", timezone="America/Toronto")
DETAILS = ("4th paragraph (changed): removed “Smith’s”; added “Smyth’s”",)


def advisory(kind: AdvisoryKind, **extra) -> Advisory:
    release = RELEASE if kind is AdvisoryKind.UPDATED else SENT + timedelta(days=1)
    values = dict(changes="changes the 4th paragraph", details=DETAILS)
    values.update(extra)
    return Advisory(kind, 2, SENT, release, **values)


def render(project: Path, adv: Advisory):
    settings, env = load(project)
    profile, problems = profile_of(ALL_FORMATS, profile_defaults(settings))
    assert not problems
    return render_advisory(adv, example_post(project), settings, env, NOW, profile)


def test_updated_before_release_and_correction_after() -> None:
    assert kind_at(RELEASE, SENT, NOW) is AdvisoryKind.UPDATED
    assert kind_at(RELEASE, SENT, RELEASE + timedelta(minutes=1)) is AdvisoryKind.CORRECTION
    # A column released upon receipt was released when it was sent.
    assert kind_at(None, SENT, NOW) is AdvisoryKind.CORRECTION


def test_updated_is_a_substitute_with_the_release_time_unchanged(project: Path) -> None:
    edition = render(project, advisory(AdvisoryKind.UPDATED))
    assert edition.subject.startswith("UPDATED: Column: ")
    text = attachment(edition, ".txt").decode()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0] == "JOB-NOT-WORK/UPDATED v2"
    assert lines[1] == "EMBARGOED UNTIL: Saturday, Dec. 5, 2026, 00:01 ET"
    assert lines[2].startswith(
        "Eds: substitutes for the column sent Monday; changes the 4th paragraph. "
        "Release time unchanged. "
    )
    assert "My neighbour Harold retired in March" in text  # the full new draft
    assert DETAILS[0] in edition.text and "substitute draft is below" in edition.text


def test_correction_after_release_carries_the_authors_note(project: Path) -> None:
    adv = advisory(AdvisoryKind.CORRECTION, note="The bakery is Smyth's, not Smith's")
    edition = render(project, adv)
    assert edition.subject.startswith("CORRECTION: ")
    text = attachment(edition, ".txt").decode()
    assert text.startswith("JOB-NOT-WORK/CORRECTION v2\n")
    assert (
        "Eds: corrects the column released Tuesday; changes the 4th paragraph. "
        "Author’s note: The bakery is Smyth’s, not Smith’s." in text
    )
    assert [a.filename for a in edition.attachments] == [
        "job-not-work-correction-v2.txt",
        "job-not-work-correction-v2.docx",
        "job-not-work-correction-v2.html",
        "job-not-work-correction-v2.xml",
    ]
    html = attachment(edition, ".html").decode()
    assert "JOB-NOT-WORK/CORRECTION v2" in html and "corrects the column released Tuesday" in html
    assert "corrected draft is below" in edition.text


def test_an_older_column_is_named_by_its_date(project: Path) -> None:
    adv = Advisory(
        AdvisoryKind.CORRECTION, 3, SENT - timedelta(days=20), None, "changes the headline"
    )
    text = attachment(render(project, adv), ".txt").decode()
    assert "JOB-NOT-WORK/CORRECTION v3" in text
    assert "corrects the column released Tuesday, Nov. 10; changes the headline." in text


def test_the_docx_of_an_advisory_reads_back(project: Path) -> None:
    edition = render(project, advisory(AdvisoryKind.CORRECTION))
    document = docx.Document(io.BytesIO(attachment(edition, ".docx")))
    paragraphs = [(p.style.name, p.text) for p in document.paragraphs]
    assert paragraphs[0] == ("Slug", "JOB-NOT-WORK/CORRECTION v2")
    assert paragraphs[2][0] == "Eds"
    assert paragraphs[2][1].startswith("Eds: corrects the column released Tuesday;")
    assert any(style == "Body" and "Harold" in text for style, text in paragraphs)
    assert document.core_properties.revision == 2
    assert document.core_properties.subject == "JOB-NOT-WORK/CORRECTION v2"


def nitf(edition) -> etree._Element:
    return etree.fromstring(attachment(edition, ".xml"), etree.XMLParser(resolve_entities=False))


def test_the_nitf_of_a_correction_carries_version_and_ed_msg(project: Path) -> None:
    root = nitf(render(project, advisory(AdvisoryKind.CORRECTION)))
    docdata = root.find("head/docdata")
    assert docdata.get("management-status") == "usable"
    assert docdata.find("du-key").get("version") == "2"
    assert docdata.find("du-key").get("key") == "JOB-NOT-WORK"
    assert docdata.find("doc-id").get("id-string") == "JOB-NOT-WORK-CORRECTION-V2"
    correction = docdata.find("correction")
    assert correction.get("id-string") == "JOB-NOT-WORK"
    assert correction.get("info").startswith("corrects the column released Tuesday")
    assert "corrects the column released Tuesday" in docdata.find("ed-msg").get("info")
    assert docdata.find("urgency") is None
    assert len(root.findall("body/body.content/p")) > 5


def test_the_nitf_of_an_update_keeps_the_embargo(project: Path) -> None:
    docdata = nitf(render(project, advisory(AdvisoryKind.UPDATED))).find("head/docdata")
    assert docdata.get("management-status") == "embargoed"
    assert docdata.find("date.release").get("norm") == "20261205T050100Z"


def test_a_kill_is_urgent_says_do_not_publish_and_carries_no_column(project: Path) -> None:
    edition = render(project, advisory(AdvisoryKind.KILL, reason="a legal complaint"))
    assert edition.subject.startswith("KILL: ")
    text = attachment(edition, ".txt").decode()
    assert text.startswith("JOB-NOT-WORK/KILL\nKILL: DO NOT PUBLISH\n")
    assert "Eds: withdrawn by the author; do not publish. Reason: a legal complaint." in text
    assert "Harold" not in text and "words." not in text
    docdata = nitf(edition).find("head/docdata")
    assert docdata.get("management-status") == "canceled"
    assert docdata.find("urgency").get("ed-urg") == "1"
    assert "do not publish" in docdata.find("ed-msg").get("info")
    document = docx.Document(io.BytesIO(attachment(edition, ".docx")))
    assert document.paragraphs[0].text == "JOB-NOT-WORK/KILL"
    assert headers_for(advisory(AdvisoryKind.KILL))["Importance"] == "high"
    assert headers_for(advisory(AdvisoryKind.CORRECTION)) == {}


@pytest.mark.parametrize("kind", list(AdvisoryKind))
def test_every_kind_renders_with_strict_templates(project: Path, kind: AdvisoryKind) -> None:
    edition = render(project, advisory(kind))
    assert "Eds: " in edition.text and "%%GREETING_NAME%%" in edition.text
    assert "<html" in edition.html and kind.label in edition.html


def test_threading_headers_follow_the_original() -> None:
    assert threading_headers("<a@x>") == {"In-Reply-To": "<a@x>", "References": "<a@x>"}
    assert threading_headers("<b@x>", "<a@x>")["References"] == "<a@x> <b@x>"
    assert threading_headers("") == {}
