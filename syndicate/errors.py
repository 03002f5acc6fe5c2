"""Errors a person can act on: each message says what is wrong and where."""


class SyndicateError(Exception):
    """Base of every error the command line turns into one readable line."""


class SettingsError(SyndicateError):
    """settings.toml is missing, unparsable or has a wrong key, type or value."""


class FeedError(SyndicateError):
    """The feed could not be fetched or is unusable; no state was changed."""


class NotFoundError(SyndicateError):
    """A post, send or recipient named on the command line does not exist."""


class TransportError(SyndicateError):
    """The transport could not be opened at all (bad host, bad login)."""
