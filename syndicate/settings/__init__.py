"""Load and validate settings.toml into one typed Settings object.

Every section forbids unknown keys so a typo fails loudly instead of being ignored. Secrets never
live in the file: they are read from the environment variables the file names.

fields.py holds the base section and the checked field types; sections.py, channels.py,
transport.py, web.py and inbound.py the sections; model.py the whole `Settings`; loading.py
reads the file (`load`). Import the names from here: `from syndicate.settings import Settings`.
"""

from __future__ import annotations

import os

# pydantic looks for plugins when the first model is built: it reads the entry points of every
# installed distribution, ~3.5 ms in our venv of 184 packages and more in a crowded site-packages
# (measured 2026-12-02; importing importlib.metadata itself is paid either way, pydantic imports
# it). syndicate uses no pydantic plugin. pydantic reads PYDANTIC_DISABLE_PLUGINS at each model's
# build, so it is set only while ours are built, and an author's own setting is kept.
_plugins_setting = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
try:
    from syndicate.settings.channels import Channels, ColumnSettings, Newsletter
    from syndicate.settings.fields import Section
    from syndicate.settings.inbound import Imap, Inbound, WordPress
    from syndicate.settings.loading import DEFAULT_CONFIG, load, packaged, read_text
    from syndicate.settings.model import Settings, read_secret_file
    from syndicate.settings.sections import (
        MIN_SECRET_KEY_BYTES,
        Author,
        DaemonSettings,
        Database,
        Dkim,
        Feed,
        Mail,
        Paths,
        Secrets,
        Site,
        Subscribers,
    )
    from syndicate.settings.transport import Outbox, Retry, Sendgrid, Smtp, TransportSettings
    from syndicate.settings.web import DeskSettings, Web
finally:
    if _plugins_setting is None:
        del os.environ["PYDANTIC_DISABLE_PLUGINS"]
    else:
        os.environ["PYDANTIC_DISABLE_PLUGINS"] = _plugins_setting

__all__ = [
    "DEFAULT_CONFIG",
    "MIN_SECRET_KEY_BYTES",
    "Author",
    "Channels",
    "ColumnSettings",
    "DaemonSettings",
    "Database",
    "DeskSettings",
    "Dkim",
    "Feed",
    "Imap",
    "Inbound",
    "Mail",
    "Newsletter",
    "Outbox",
    "Paths",
    "Retry",
    "Secrets",
    "Section",
    "Sendgrid",
    "Settings",
    "Site",
    "Smtp",
    "Subscribers",
    "TransportSettings",
    "Web",
    "WordPress",
    "load",
    "packaged",
    "read_secret_file",
    "read_text",
]
