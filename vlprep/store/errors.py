"""Errors of the feature store. Every message names the store path and what to do about it."""


class StoreError(Exception):
    """A store cannot be opened, read or written as asked."""


class StoreMismatchError(StoreError):
    """An existing store was written with another kind, schema or producer than the writer's."""
