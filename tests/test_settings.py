"""The settings package: public names where they always were, each checked field type giving one
line that names the file and the key, and no pydantic plugin scan while the models build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from syndicate import settings
from syndicate.errors import SettingsError

PACKAGE = Path(settings.__file__).parent

MINIMAL = {
    "site": {"name": "Notes", "url": "https://notes.example.com"},
    "author": {"name": "Ann Author", "email": "ann@example.com"},
    "feed": {"source": "feed.xml"},
    "mail": {
        "from_address": "ann@example.com",
        "reply_address": "replies@example.com",
        "base_url": "https://notes.example.com",
    },
}


def _toml(sections: dict[str, dict[str, object]]) -> str:
    # JSON strings, booleans and lists of strings are valid TOML values.
    lines = []
    for name, keys in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def _load(tmp_path: Path, section: str, key: str, value: object) -> settings.Settings:
    sections = {name: dict(keys) for name, keys in MINIMAL.items()}
    sections.setdefault(section, {})[key] = value
    path = tmp_path / "settings.toml"
    path.write_text(_toml(sections), encoding="utf-8")
    return settings.load(path)


def test_the_public_names_import_from_the_package_and_no_module_is_over_500_lines() -> None:
    from syndicate.settings import (  # noqa: F401
        DEFAULT_CONFIG,
        Dkim,
        Imap,
        Inbound,
        Retry,
        Sendgrid,
        Settings,
        Smtp,
        WordPress,
        load,
        packaged,
        read_text,
    )

    assert set(settings.__all__) <= set(dir(settings))
    assert packaged("settings.toml").is_file() and packaged("templates").is_dir()
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert len(sizes) > 3 and max(sizes.values()) < 500, sizes


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("site", "url", "ftp://notes", "site.url: expected an absolute http(s) URL"),
        ("author", "email", "ann", "author.email: expected an email address"),
        ("author", "timezone", "Mars/Olympus", "author.timezone: expected an IANA time zone"),
        ("mail", "from_address", "ann+x@example.com", "mail.from_address: must not contain '+'"),
        ("mail", "bounce_address", "bounces", "mail.bounce_address: expected an email address"),
        ("channels.newsletter", "subject", "{titel}", "unknown placeholder {titel}"),
        ("channels.column", "copyright", "© {yaer}", "channels.column.copyright: unknown"),
        ("channels.column", "policy", "digest: 0 7 * * *", "a digest is for readers only"),
        ("channels.newsletter", "policy", "sometimes", "newsletter.policy: unknown send policy"),
        ("channels.column", "embargo", "whenever", "channels.column.embargo: cannot read"),
        ("transport.sendgrid", "host", "api.sendgrid.com", "transport.sendgrid.host: expected"),
        ("desk", "path", "desk/", "desk.path: must start with '/'"),
        ("inbound", "spam_comand", ["spamc"], "inbound.spam_comand: unknown key"),
        ("transport.smtp", "port", 0, "transport.smtp.port: expected a TCP port from 1 to"),
        ("inbound.imap", "port", 65536, "inbound.imap.port: expected a TCP port from 1 to"),
        ("web", "port", -1, "web.port: expected a TCP port from 1 to 65535, got -1"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_file_and_the_key(
    tmp_path: Path, section: str, key: str, value: object, message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        _load(tmp_path, section, key, value)
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / 'settings.toml'}: ") and "\n" not in text
    assert message in text


def test_checked_fields_keep_good_values_and_trim_base_urls(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "transport.sendgrid", "host", "http://127.0.0.1:9/")
    assert loaded.transport.sendgrid.host == "http://127.0.0.1:9"
    loaded = _load(tmp_path, "mail", "base_url", "https://notes.example.com/")
    assert loaded.mail.base_url == "https://notes.example.com"
    assert loaded.mail.bounce_address == ""  # empty: the reply address is used
    loaded = _load(tmp_path, "channels.column", "embargo", "saturday 00:01")
    assert loaded.channels.column.embargo == "saturday 00:01"
    assert loaded.channels.column.formats == ["txt"] and loaded.inbound.spam_command == []


PLUGIN_SCAN = """
import importlib.metadata, json, os, sys
asked = []
real = importlib.metadata.entry_points
def entry_points(**selection):
    asked.append(selection.get("group"))
    return real(**selection)
importlib.metadata.entry_points = entry_points
from syndicate import settings
settings.load(settings.packaged("settings.toml"))
print(json.dumps({"asked": asked, "env": os.environ.get("PYDANTIC_DISABLE_PLUGINS")}))
"""


@pytest.mark.parametrize("own_setting", [None, "some_plugin"])
def test_building_the_models_skips_pydantics_plugin_scan(own_setting: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if own_setting:
        env["PYDANTIC_DISABLE_PLUGINS"] = own_setting
    done = subprocess.run(
        [sys.executable, "-c", PLUGIN_SCAN], capture_output=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout)
    # The scan asks importlib.metadata for the "pydantic" group: it never did, and the
    # author's own setting (or its absence) is what the process has afterwards.
    assert result == {"asked": [], "env": own_setting}
