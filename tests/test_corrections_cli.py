"""Corrections commands and settings: bad input gets one clear line, nothing else happens."""

from __future__ import annotations

from pathlib import Path

import pytest

from syndicate import settings
from syndicate.errors import SettingsError
from tests.conftest import set_setting
from tests.support.inbound import cli


def test_an_empty_database_has_no_corrections(project: Path) -> None:
    listed = cli(project, "corrections", "list")
    assert listed.returncode == 0 and b"No corrections" in listed.stdout
    assert cli(project, "corrections", "list", "--json").stdout.strip() == b"[]"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("corrections", "send", "7"), b"no correction 7 (see 'syndicate corrections list')"),
        (("corrections", "show", "7"), b"no correction 7"),
        (("corrections", "drop", "7"), b"no correction 7"),
        (("kill", "nonesuch", "--reason", "x"), b"no post 'nonesuch'"),
        (("kill", "nonesuch"), b"--reason is required"),
    ],
)
def test_unknown_ids_and_missing_reasons_are_one_line(
    project: Path, args: tuple[str, ...], message: bytes
) -> None:
    done = cli(project, *args)
    assert done.returncode == 1
    assert message in done.stderr
    assert b"Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('corrections = "ask"', 'corrections = "maybe"', "channels.column.corrections"),
        ("corrections_min_words = 1", "corrections_min_words = 0", "corrections_min_words"),
        ('corrections = "off"', 'corrections = "resend"', "channels.newsletter.corrections"),
    ],
)
def test_a_bad_corrections_setting_names_the_key(
    project: Path, old: str, new: str, key: str
) -> None:
    set_setting(project / "settings.toml", old, new)
    with pytest.raises(SettingsError, match=key):
        settings.load(project / "settings.toml")
