"""The sharded HDF5 feature store (format v1): see docs/store.md."""

from .errors import (
    InvalidIdError,
    ItemError,
    NotAStoreError,
    StoreDamagedError,
    StoreError,
    StoreIOError,
    StoreMismatchError,
)
from .generations import add_field
from .geometry import box_geometry
from .ids import MAX_ID_BYTES
from .reader import FeatureStore
from .repair import RepairReport, repair
from .sink import ShardSink
from .summary import summarize
from .verify import verify
from .writer import StoreWriter


def __getattr__(name: str):
    # The torch dataset is imported on first use: torch takes seconds to import and most store
    # users (inspect, writers in pipelines) never need it.
    if name == "FeatureDataset":
        from .dataset import FeatureDataset

        return FeatureDataset
    raise AttributeError(name)


__all__ = [
    "FeatureDataset",
    "FeatureStore",
    "InvalidIdError",
    "ItemError",
    "MAX_ID_BYTES",
    "NotAStoreError",
    "RepairReport",
    "StoreDamagedError",
    "ShardSink",
    "StoreError",
    "StoreIOError",
    "StoreMismatchError",
    "StoreWriter",
    "add_field",
    "box_geometry",
    "repair",
    "summarize",
    "verify",
]
