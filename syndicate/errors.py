"""Errors a person can act on: each message says what is wrong and where."""


class SyndicateError(Exception):
    """Base of every error the command line turns into one readable line."""


class SettingsError(SyndicateError):
    """settings.toml is missing, unparsable or has a wrong key, type or value."""


class FeedError(SyndicateError):
    """The feed could not be fetched or is unusable; no state was changed."""


class NotFoundError(SyndicateError):
    """A post, send or recipient named on the command line does not exist."""


def no_such_post(post_ref: str) -> NotFoundError:
    """What `preview` and `send` say when POST names nothing in the database."""
    hint = "" if post_ref == "latest" else ", 'syndicate posts list' for the ids, or use 'latest'"
    return NotFoundError(
        f"no post {post_ref!r} in the database; run 'syndicate run --once' to read the feed{hint}"
    )


class TransportError(SyndicateError):
    """The transport could not be opened at all (bad host, bad login)."""
