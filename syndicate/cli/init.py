"""`syndicate init FOLDER`: a ready project folder for an installed syndicate (no checkout)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Annotated

import typer

from syndicate.cli.common import app, console
from syndicate.errors import SettingsError

READERS_HEADER = "email,name\n"
EDITORS_HEADER = "email,name,publication,timezone,word_limit,formats,quotes,links\n"
EXAMPLE_FEED = "examples/feed.xml"
TEMPLATES_NOTE = """\
Templates here override syndicate's own, file by file: a file you put here under the same
path (email/edition.html.j2, column/draft.txt.j2 …) is used instead of the shipped one, and
every file you do not have comes from syndicate. `syndicate init --copy-templates` copies all
of them here to start from. The shipped ones are in:
{shipped}
"""


def set_key(text: str, section: str, key: str, value: str) -> str:
    """`key = value` in `[section]` of a TOML text, keeping every comment around it."""
    header = re.search(rf"(?m)^\[{re.escape(section)}\][ \t]*$", text)
    if header is None:
        raise SettingsError(f"the shipped settings.toml has no [{section}] section")
    end = re.compile(r"(?m)^\[").search(text, header.end())
    stop = end.start() if end else len(text)
    line = re.compile(rf"(?m)^{re.escape(key)}[ \t]*=.*$").search(text, header.end(), stop)
    if line is None:
        raise SettingsError(f"the shipped settings.toml has no {key} in [{section}]")
    # A JSON string is a valid TOML basic string (same escapes).
    new = f"{key} = {json.dumps(value, ensure_ascii=False)}"
    return text[: line.start()] + new + text[line.end() :]


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="Folder to create (or an empty one to fill).")],
    feed_url: Annotated[
        str,
        typer.Option(
            "--feed", help="Your blog's feed URL or file. Default: the shipped example feed."
        ),
    ] = "",
    author: Annotated[str, typer.Option("--author", help="Your name, as bylines print it.")] = "",
    email: Annotated[
        str, typer.Option("--email", help="Your address: replies and previews go there.")
    ] = "",
    copy_templates: Annotated[
        bool,
        typer.Option(
            "--copy-templates", help="Copy every shipped template into templates/ to edit."
        ),
    ] = False,
) -> None:
    """Create a project folder: settings.toml, templates/, subscribers/ (empty lists)."""
    from syndicate.settings import load, packaged

    config = folder / "settings.toml"
    if config.exists():
        raise SettingsError(f"{config}: already exists; syndicate init never overwrites a project")
    if folder.exists() and not folder.is_dir():
        raise SettingsError(f"{folder}: is a file, not a folder")
    text = packaged("settings.toml").read_text(encoding="utf-8")
    if feed_url:
        text = set_key(text, "feed", "source", _feed_source(feed_url))
    if author:
        text = set_key(text, "author", "name", author)
        text = set_key(text, "author", "tagline", "")
    if email:
        text = set_key(text, "author", "email", email)
    folder.mkdir(parents=True, exist_ok=True)
    config.write_text(text, encoding="utf-8")
    try:
        load(config)  # what init writes must load: a bad --email is refused here, not later
    except SettingsError:
        config.unlink()
        raise
    templates = folder / "templates"
    if copy_templates:
        shutil.copytree(packaged("templates"), templates, dirs_exist_ok=True)
    else:
        templates.mkdir(exist_ok=True)
    (templates / "README.txt").write_text(
        TEMPLATES_NOTE.format(shipped=packaged("templates")), encoding="utf-8"
    )
    lists = folder / "subscribers"
    lists.mkdir(exist_ok=True)
    for name, header in (("readers.csv", READERS_HEADER), ("editors.csv", EDITORS_HEADER)):
        if not (lists / name).exists():
            (lists / name).write_text(header, encoding="utf-8")
    if not feed_url:
        example = folder / EXAMPLE_FEED
        example.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(packaged(EXAMPLE_FEED), example)
    console.print(
        f"Created {folder}: settings.toml, templates/, subscribers/", highlight=False, markup=False
    )
    console.print(
        f"Next: edit {config} ([site], [mail], [transport]), add readers to "
        f"{lists / 'readers.csv'}, then: cd {folder} && syndicate run --once",
        highlight=False,
        markup=False,
    )


def _feed_source(value: str) -> str:
    """A URL as given; a file made absolute, since settings resolve paths against the folder."""
    from syndicate.feedwatch import feed

    if feed.is_url(value):
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise SettingsError(f"--feed {value}: no such file (give a feed URL or a feed file)")
    return str(path.resolve())
