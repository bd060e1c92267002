import pickle

import numpy as np
import pytest
import torch
from store_helpers import ODD_IDS, region_record

from vlprep.store import FeatureStore, StoreError, StoreMismatchError, StoreWriter


def _write(path, records, **kw):
    with StoreWriter(path, kind="regions", **kw) as w:
        for item_id, rec in records.items():
            w.add(item_id, rec)


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))


def test_odd_ids_round_trip_across_shards(tmp_path):
    rng = np.random.default_rng(0)
    records = {i: region_record(rng) for i in ODD_IDS}
    _write(tmp_path / "s", records, shard_size=4)
    store = FeatureStore(tmp_path / "s")
    assert len(store) == len(ODD_IDS)
    assert store.ids() == ODD_IDS
    assert len(store.shards()) == 3
    for item_id, rec in records.items():
        assert item_id in store
        _assert_same(store[item_id], rec)
    assert [i for i, _ in store] == ODD_IDS
    for got, item_id in zip(store.get_many(ODD_IDS[::-1]), ODD_IDS[::-1]):
        _assert_same(got, records[item_id])
    # ids never become paths: only numbered shards exist
    assert sorted(p.name for p in (tmp_path / "s" / "shards").iterdir()) == [
        "00000.h5",
        "00001.h5",
        "00002.h5",
    ]
    assert "missing" not in store
    with pytest.raises(KeyError, match="missing"):
        store["missing"]


def test_fixed_fields_strings_and_declared_schema(tmp_path):
    schema = {"embedding": ("float32", (4,)), "label": ("int64", ()), "path": (str, ())}
    with StoreWriter(tmp_path / "s", kind="misc", schema=schema, shard_size=2) as w:
        for i in range(5):
            w.add(f"{i}", {"embedding": np.full(4, i, np.float32), "label": i, "path": f"/data/ü{i}.jpg"})
    store = FeatureStore(tmp_path / "s")
    rec = store["3"]
    np.testing.assert_array_equal(rec["embedding"], [3, 3, 3, 3])
    assert rec["label"] == 3 and rec["path"] == "/data/ü3.jpg"
    assert store.schema["embedding"].shape == (4,)
    with StoreWriter(tmp_path / "s", kind="misc") as w, pytest.raises(StoreError, match="shape"):
        w.add("bad", {"embedding": np.zeros(5, np.float32), "label": 1, "path": "x"})


def test_float16_storage_keeps_boxes_exact(tmp_path):
    rng = np.random.default_rng(1)
    rec = region_record(rng, n=5)
    _write(tmp_path / "s", {"a": rec}, dtype="float16")
    got = FeatureStore(tmp_path / "s")["a"]
    assert got["features"].dtype == np.float16
    np.testing.assert_allclose(got["features"], rec["features"], rtol=1e-3, atol=1e-3)
    assert got["boxes"].dtype == np.float32
    np.testing.assert_array_equal(got["boxes"], rec["boxes"])


@pytest.mark.parametrize("compression", ["none", "lzf", "gzip"])
def test_compressions_round_trip(tmp_path, compression):
    rng = np.random.default_rng(2)
    records = {f"i{k}": region_record(rng) for k in range(6)}
    _write(tmp_path / "s", records, shard_size=4, compression=compression)
    store = FeatureStore(tmp_path / "s")
    assert store.meta["compression"] == compression
    for item_id, rec in records.items():
        _assert_same(store[item_id], rec)


def test_pending_resume_and_errors_cleared_on_commit(tmp_path):
    rng = np.random.default_rng(3)
    with StoreWriter(tmp_path / "s", kind="regions", shard_size=2) as w:
        w.add("a", region_record(rng))
        w.add("b", region_record(rng))
        w.add("c", region_record(rng))  # buffered, not yet committed
        assert w.pending(["a", "b", "c", "d", "d"]) == ["d"]
        w.error("d", "/x/d.jpg", "decode", "truncated file")
    store = FeatureStore(tmp_path / "s")
    assert [e["id"] for e in store.errors()] == ["d"]
    assert set(store.errors()[0]) == {"id", "source", "stage", "message", "at"}
    with StoreWriter(tmp_path / "s", kind="regions") as w:
        assert w.pending(["a", "b", "c", "d"]) == ["d"]
        w.add("d", region_record(rng))
    assert FeatureStore(tmp_path / "s").errors() == []
    with (
        StoreWriter(tmp_path / "s", kind="regions") as w,
        pytest.raises(StoreError, match="already in the store"),
    ):
        w.add("a", region_record(rng))


def test_mismatches_are_clear_errors_unless_overwrite(tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "s"
    with StoreWriter(path, kind="regions", producer={"model": "m", "boxes": [10, 100]}) as w:
        w.add("a", region_record(rng))
    with pytest.raises(StoreMismatchError, match="boxes"):
        StoreWriter(path, kind="regions", producer={"model": "m", "boxes": [36, 36]})
    with pytest.raises(StoreMismatchError, match="kind"):
        StoreWriter(path, kind="video")
    with StoreWriter(path, kind="regions") as w, pytest.raises(StoreError, match="features.*shape"):
        w.add("b", {**region_record(rng), "features": np.zeros((2, 3, 4), np.float32)})
    with StoreWriter(path, kind="regions") as w, pytest.raises(StoreError, match="missing field.*num_boxes"):
        rec = region_record(rng)
        del rec["num_boxes"]
        w.add("c", rec)
    # same producer as a tuple instead of a list is the same producer
    StoreWriter(path, kind="regions", producer={"model": "m", "boxes": (10, 100)}).close()
    with StoreWriter(path, kind="regions", producer={"model": "other"}, overwrite=True) as w:
        w.add("z", region_record(rng))
    assert FeatureStore(path).ids() == ["z"]


def test_ragged_fields_must_agree_in_length(tmp_path):
    rng = np.random.default_rng(5)
    rec = region_record(rng, n=4)
    rec["boxes"] = rec["boxes"][:3]
    with StoreWriter(tmp_path / "s", kind="regions") as w, pytest.raises(StoreError, match="disagree"):
        w.add("a", rec)


def test_not_a_store_and_missing_field(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("hello")
    with pytest.raises(StoreError, match="not a vlprep store"):
        FeatureStore(tmp_path / "plain")
    with pytest.raises(StoreError, match="does not exist"):
        FeatureStore(tmp_path / "nowhere")
    with pytest.raises(StoreError, match="non-empty directory"):
        StoreWriter(tmp_path / "plain")
    rng = np.random.default_rng(6)
    _write(tmp_path / "s", {"a": region_record(rng)})
    store = FeatureStore(tmp_path / "s")
    with pytest.raises(StoreError, match="no field.*'nope'"):
        store.get("a", ["nope"])


def test_one_writer_at_a_time(tmp_path):
    with StoreWriter(tmp_path / "s", kind="x"), pytest.raises(StoreError, match="another StoreWriter"):
        StoreWriter(tmp_path / "s", kind="x")


def test_pickle_is_cheap_and_handles_bounded(tmp_path):
    rng = np.random.default_rng(7)
    _write(tmp_path / "s", {f"i{k}": region_record(rng) for k in range(10)}, shard_size=2)
    store = FeatureStore(tmp_path / "s", max_open=2)
    assert len(store) == 10 and not store._readers  # opening and counting read the index only
    for k in range(10):
        store[f"i{k}"]
        assert len(store._readers) <= 2
    blob = pickle.dumps(store)
    assert len(blob) < 300
    clone = pickle.loads(blob)
    _assert_same(clone["i3"], store["i3"])


def test_dataloader_with_worker_processes_matches_direct_access(tmp_path):
    rng = np.random.default_rng(8)
    records = {f"img{k}": region_record(rng, n=int(rng.integers(1, 9))) for k in range(12)}
    _write(tmp_path / "s", records, shard_size=5)
    store = FeatureStore(tmp_path / "s")
    store["img0"]  # open handles in the parent before the workers fork
    ds = store.torch_dataset(fields=["features", "boxes"], max_items=6, geometry=7)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, collate_fn=ds.collate)
    seen = []
    for batch in loader:
        assert batch["features"].shape[1:] == (6, 16) and batch["geometry"].shape[1:] == (6, 7)
        for j, item_id in enumerate(batch["id"]):
            rec = records[item_id]
            n = min(len(rec["features"]), 6)
            assert batch["mask"][j].sum() == n
            np.testing.assert_array_equal(batch["features"][j, :n].numpy(), rec["features"][:n])
            assert not batch["features"][j, n:].any()
            np.testing.assert_allclose(
                batch["geometry"][j, :n].numpy(), store.geometry(item_id, 7)[:n], rtol=1e-6
            )
            seen.append(item_id)
    assert seen == store.ids()


def test_collate_pads_variable_lengths_without_max_items(tmp_path):
    rng = np.random.default_rng(9)
    _write(tmp_path / "s", {"a": region_record(rng, n=2), "b": region_record(rng, n=5)})
    ds = FeatureStore(tmp_path / "s").torch_dataset(fields=["features"])
    batch = ds.collate([ds[0], ds[1]])
    assert batch["features"].shape == (2, 5, 16)
    assert batch["mask"].tolist() == [[True, True, False, False, False], [True] * 5]
