class DecodeError(Exception):
    """A media file could not be decoded; the message says why."""
