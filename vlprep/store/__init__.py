"""The sharded HDF5 feature store (format v1): see docs/store.md."""

from .errors import StoreError, StoreMismatchError
from .generations import add_field
from .geometry import box_geometry
from .reader import FeatureStore
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
    "ShardSink",
    "StoreError",
    "StoreMismatchError",
    "StoreWriter",
    "add_field",
    "box_geometry",
    "summarize",
    "verify",
]
