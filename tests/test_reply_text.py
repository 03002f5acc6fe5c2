"""The reader's own words from replies written in the major clients (Gmail web and Android,
Outlook desktop and web, Apple Mail, iOS Mail, Thunderbird, Yahoo, Samsung Email, Zimbra,
Roundcube and the webmails of GMX, Orange, Yandex and Mail.ru) in English, French, German,
Spanish, Russian, Italian, Portuguese and Dutch: quoted parts gone, whatever introduces them (an
attribution line in the reader's language, an Outlook header block, a webmail's quoting <div> or
<blockquote> without '>' marks), and never nothing when the reader wrote something."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from syndicate.inbound.steps import text

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "replies"

# Whatever the client, none of the quoted edition or its attribution may remain.
QUOTED = (
    "hidden inside it",
    "what they pay you for",
    "Jane Marlowe",
    "replies+",
    "wrote",
    "schrieb ",
    "écrit",
    "escribió",
    "написал",
    "scritto",
    "escreveu",
    "Original",
    "original",
    "origine",
    "Gesendet",
    "Verzonden",
    "Enviado:",
    "Message du",
    ">",
)

# fixture: (words the reader wrote, signature lines that must go as well)
REPLIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "gmail_ru.eml": (("Я работаю медсестрой тридцать лет", "разницу между должностью"), ()),
    "yandex_ru.eml": (("Переслала текст коллегам в библиотеке.",), ("Анна Кузнецова",)),
    "mailru_ru_html.eml": (("У нас на заводе говорили то же самое.",), ()),
    "outlook_es.eml": (("Lo comentaremos en la reunión del lunes.",), ()),
    "outlook_en_original_message.eml": (("reprint this in our staff newsletter",), ()),
    "outlook_web_nl.eml": (("Ik heb het voorgelezen aan mijn team.",), ()),
    "apple_de.eml": (("an meinen Vater erinnert, der Schreiner war.",), ()),
    "thunderbird_es.eml": (("Lo imprimí y lo pegué en la nevera.",), ()),
    "yahoo_en.eml": (("My grandmother would have agreed with every word.",), ()),
    "yahoo_fr_html.eml": (("il tombe à pic pour ma reconversion.",), ()),
    "android_gmail_it.eml": (("Lo faccio leggere a mio figlio.",), ()),
    "ios_pt.eml": (("Vou partilhar com a minha turma.",), ("Enviado do meu iPhone",)),
    "gmx_de_html.eml": (("Genau so geht es mir in der Pflege.",), ()),
    "orange_fr.eml": (("je me reconnais dans chaque ligne.",), ()),
    "zimbra_es.eml": (("lo vamos a leer en voz alta.",), ()),
    "thunderbird_en_bottom.eml": (
        ("I read this twice. The second paragraph is the one I will keep.",),
        ("Peter Lindqvist",),
    ),
    "gmail_en_inline.eml": (
        ("Not mine: mine has two, and they argue.", "Then I am lucky, I would do this anyway."),
        (),
    ),
    "gmail_en_one_word.eml": (("Thanks!",), ()),
    "samsung_fr.eml": (("Très beau texte, merci.",), ("Envoyé depuis mon appareil Galaxy",)),
    "roundcube_de.eml": (("das werde ich meinen Azubis zeigen.",), ()),
}


def message(name: str) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes((FIXTURES / name).read_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_every_fixture_has_its_expectation() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.eml")) == sorted(REPLIES)


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_only_the_readers_own_words_remain(name: str) -> None:
    words, signatures = REPLIES[name]
    own = text.own_words(message(name))
    for expected in words:
        assert expected in own, f"{expected!r} missing from {own!r}"
    for quoted in QUOTED + signatures:
        assert quoted not in own, f"{quoted!r} left in {own!r}"


def html_part(name: str) -> EmailMessage | None:
    return next((p for p in message(name).walk() if p.get_content_type() == "text/html"), None)


WITH_HTML = sorted(name for name in REPLIES if html_part(name) is not None)


def test_most_fixtures_have_an_html_part() -> None:
    assert len(WITH_HTML) >= 10


@pytest.mark.parametrize("name", WITH_HTML)
def test_the_html_part_alone_gives_the_same_words(name: str) -> None:
    """Clients that send only HTML quote with a <div> or <blockquote> and no '>' marks."""
    html = html_part(name)
    assert html is not None
    alone = EmailMessage()
    alone.set_content(html.get_content(), subtype="html")
    own = text.own_words(alone)
    for expected in REPLIES[name][0]:
        assert expected in own, f"{expected!r} missing from {own!r}"
    for quoted in QUOTED:
        assert quoted not in own, f"{quoted!r} left in {own!r}"


@pytest.mark.parametrize(
    "written",
    [
        "Thanks!",
        "ok",
        "-- \nJust a signature-looking line",
        "Sent from my iPhone",
        "> I only quoted you and said nothing else",
        "On second thought, I wrote: yes.",
        "From: me\nSent: now\nThat is how my note begins.",
    ],
)
def test_never_nothing_when_the_reader_wrote_something(written: str) -> None:
    assert text.strip_quotes(written).strip()


def test_a_bottom_post_under_a_wrapped_attribution_keeps_only_the_answer() -> None:
    written = (
        "On Thu, Nov 26, 2026 at 1:00 PM Jane Marlowe <\n"
        "replies+r1-2-xl36ajd46gagqbac@notes.example.com> wrote:\n\n"
        "> Every job has a work hidden inside it.\n\n"
        "My answer sits below your words.\n"
    )
    assert text.strip_quotes(written) == "My answer sits below your words."
