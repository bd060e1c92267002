"""Errors of the feature store. Every message is one line that names the store path and what to do about it.

`exit_code` is what a command should exit with: 2 for a store that cannot be used as given (wrong
parameters, someone else's directory, a damaged store to repair first), 1 for a failure of the data or
the machine (a disk full, an unreadable shard)."""


class StoreError(Exception):
    """A store cannot be opened, read or written as asked."""

    exit_code = 1


class StoreMismatchError(StoreError):
    """An existing store was written with another kind, schema or producer than the writer's."""

    exit_code = 2


class NotAStoreError(StoreError):
    """The directory is not a vlprep store (and is not empty): nothing in it is ours to write or delete."""

    exit_code = 2


class StoreDamagedError(StoreError):
    """`store.json` or `index.sqlite` is missing or damaged: the store is refused, unchanged, until
    `vlprep repair STORE` rebuilds them from the shards."""

    exit_code = 2


class StoreIOError(StoreError):
    """Writing failed in the operating system (disk full, I/O error); the committed items are intact and
    the same command resumes once the cause is fixed."""


class ItemError(StoreError):
    """One item cannot be stored (an invalid id, a value out of the storage dtype's range, a record that
    does not fit the schema); a pipeline records it as that item's error and goes on."""


class InvalidIdError(ItemError):
    """An item id is empty, not valid UTF-8, holds a NUL or is longer than MAX_ID_BYTES."""


def damaged(root, what: str) -> StoreDamagedError:
    return StoreDamagedError(
        f"{root}: {what}; the store is left unchanged: "
        f"run `vlprep repair {root}` to rebuild it from its shards"
    )
