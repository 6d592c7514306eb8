"""The few named exceptions the package raises; each carries a message written for the person who must act."""


class AnalyticsError(Exception):
    """Base class: an error whose message can be shown to the user as it is."""


class ConfigError(AnalyticsError):
    """The configuration is invalid; the message names the key and the fix."""


class StoreError(AnalyticsError):
    """The store could not do what was asked (unreachable, locked, full, or an unknown schema)."""


class NotFound(AnalyticsError):
    """A named thing (a site, say) does not exist."""


class Conflict(AnalyticsError):
    """A named thing already exists."""


class Unavailable(AnalyticsError):
    """Ingest cannot take the event now (queue full, store failing, shutting down); the client should retry."""


class InvalidData(AnalyticsError):
    """The store refused rows as they are (a value it cannot hold); the other rows of the same batch may be fine."""


class TooSlow(AnalyticsError):
    """A question took longer than its time budget and was stopped, so that it cannot hold the server."""
