import numpy as np
import pytest
from store_helpers import region_record

from vlprep.store import FeatureStore, StoreError, StoreWriter, add_field, verify


def test_add_field_in_place_new_generation(tmp_path):
    rng = np.random.default_rng(0)
    records = {f"v{i}": region_record(rng) for i in range(7)}
    with StoreWriter(tmp_path / "s", kind="video", shard_size=3) as w:
        for k, r in records.items():
            w.add(k, r)
    before = sorted(p.name for p in (tmp_path / "s" / "shards").iterdir())
    n = add_field(tmp_path / "s", "tokens", lambda i, r: (r["features"][:, 0] > 0).astype(np.int32))
    assert n == 7
    store = FeatureStore(tmp_path / "s")
    assert store.schema["tokens"].dtype == "int32" and store.schema["tokens"].ragged
    after = sorted(p.name for p in (tmp_path / "s" / "shards").iterdir())
    indexed = {s["file"] for s in store.shards()}
    # the index moved to new files; the superseded ones stay for open readers until `repair --gc`
    assert set(before).isdisjoint(indexed) and len(indexed) == len(before)
    assert set(after) == set(before) | indexed
    for k, r in records.items():
        np.testing.assert_array_equal(store[k]["tokens"], (r["features"][:, 0] > 0).astype(np.int32))
        np.testing.assert_array_equal(store[k]["features"], r["features"])
    assert verify(store).ok
    with pytest.raises(StoreError, match="already has"):
        add_field(tmp_path / "s", "tokens", lambda i, r: r["features"])


def test_add_field_failure_leaves_store_intact(tmp_path):
    rng = np.random.default_rng(1)
    with StoreWriter(tmp_path / "s", kind="video", shard_size=2) as w:
        for i in range(5):
            w.add(f"v{i}", region_record(rng))

    def explode(item_id, record):
        if item_id == "v3":
            raise RuntimeError("boom")
        return np.zeros(len(record["features"]), np.int32)

    with pytest.raises(RuntimeError):
        add_field(tmp_path / "s", "tokens", explode)
    store = FeatureStore(tmp_path / "s")
    assert "tokens" not in store.schema and len(store) == 5
    assert verify(store).ok
    # the next writer removes the half-built generation
    StoreWriter(tmp_path / "s", kind="video").close()
    assert not verify(FeatureStore(tmp_path / "s")).notes
