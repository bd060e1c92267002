class DecodeError(Exception):
    """A media file could not be decoded; the message says why."""


class DecoderUnavailableError(Exception):
    """A decoder that was asked for by name cannot run here (a library is missing); the message says
    what to install. A usage error, not a property of any one file."""
