"""Hostile and odd input: crafted shards, external storage, invalid ids, float16 overflow, undecodable file
names, npz-dir names. Each is a clear error of its own item or shard, never an allocation of terabytes,
a read outside the store, a dead job or an overwritten file."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from store_helpers import region_record

from vlprep.interop.npz_dir import file_name, read_npz, write_npz_dir
from vlprep.store import FeatureStore, InvalidIdError, ItemError, StoreError, StoreWriter, verify


def _store(path, n=4):
    rng = np.random.default_rng(0)
    with StoreWriter(path, kind="regions", shard_size=10) as w:
        for i in range(n):
            w.add(f"img/{i}", region_record(rng, n=3, dim=8))
    return path


def _shard(path):
    return path / "shards" / "00000.h5"


def test_a_dataset_claiming_2_to_the_40_rows_is_refused_before_allocating(tmp_path):
    path = _store(tmp_path / "s")
    with h5py.File(_shard(path), "r+") as f:
        del f["features"]
        f.create_dataset("features", shape=(2**40, 8), dtype="f4", chunks=(1024, 8), compression="gzip")
    store = FeatureStore(path)
    with pytest.raises(StoreError, match="damaged shard: .*'features' claims"):
        store["img/0"]
    report = verify(store)
    assert any("'features' claims" in f for f in report.faults)


@pytest.mark.parametrize("offsets", [[0, 3, -3, 6, 12], [0, 3, 6, 9, 10**12], [0, 3, 6, 9]])
def test_offsets_out_of_range_negative_or_short_are_faults(tmp_path, offsets):
    path = _store(tmp_path / "s")
    with h5py.File(_shard(path), "r+") as f:
        del f["offsets"]
        f["offsets"] = np.array(offsets, np.int64)
    store = FeatureStore(path)
    with pytest.raises(StoreError, match="damaged shard"):
        store.get_many(["img/0"])
    assert not verify(store).ok


def test_external_storage_is_refused_on_open_and_in_verify(tmp_path):
    path = _store(tmp_path / "s")
    outside = tmp_path / "outside.bin"
    outside.write_bytes(np.arange(4, dtype=np.int64).tobytes())
    with h5py.File(_shard(path), "r+") as f:
        del f["num_boxes"]
        f.create_dataset("num_boxes", shape=(4,), dtype="i8", external=[(str(outside), 0, 32)])
    store = FeatureStore(path)
    with pytest.raises(StoreError, match="external or virtual storage"):
        store["img/1"]
    assert any("external or virtual" in f for f in verify(store).faults)


def test_an_index_row_beyond_the_shard_is_an_error(tmp_path):
    import sqlite3

    path = _store(tmp_path / "s")
    with sqlite3.connect(path / "index.sqlite") as conn:
        conn.execute("UPDATE items SET row = 99 WHERE id = 'img/2'")
    conn.close()
    with pytest.raises(StoreError, match="row 99 of a shard with 4 items"):
        FeatureStore(path)["img/2"]


@pytest.mark.parametrize(
    ("bad", "why"),
    [("", "empty"), ("a\0b", "NUL"), ("x\ud800y", "UTF-8"), ("é" * 2100, "bytes long")],
)
def test_add_validates_ids(tmp_path, bad, why):
    with StoreWriter(tmp_path / "s", kind="t") as w:
        with pytest.raises(InvalidIdError, match=why):
            w.add(bad, {"x": np.zeros(2)})
        w.error(bad, "src", "store", "recorded anyway")  # an error row keeps the escaped id
        w.add("fine", {"x": np.zeros(2)})
    store = FeatureStore(tmp_path / "s")
    assert store.ids() == ["fine"]
    if bad:
        assert store.errors()[0]["id"] in (bad, bad.replace("\0", "\\x00"), "x\\ud800y")


def test_float16_overflow_is_the_items_error_not_inf(tmp_path):
    with StoreWriter(tmp_path / "s", kind="t", dtype="float16") as w:
        with pytest.raises(ItemError, match="value out of float16 range"):
            w.add("big", {"features": np.array([[1.0, 70000.0]], np.float32)})
        w.add("ok", {"features": np.array([[1.0, 65504.0]], np.float32)})
    store = FeatureStore(tmp_path / "s")
    assert store.ids() == ["ok"] and np.isfinite(store["ok"]["features"]).all()


# -- in a pipeline: the item's error row, never a dead job ----------------------------------------------


def _decode(item):
    return float(Path(item.path).read_text())


def _load(scale: float) -> float:
    return scale


def _run(model, batch):
    return [{"features": np.full((2, 3), value * model, np.float32)} for _item, value in batch]


@pytest.fixture(scope="module")
def ray_by_value(ray_local):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return ray_local


@pytest.mark.parametrize("shard_writes", ["driver", "workers"])
def test_pipeline_records_invalid_ids_and_overflow_and_processes_undecodable_names(
    ray_by_value, tmp_path, shard_writes
):
    from vlprep.pipelines.inputs import Item, list_items
    from vlprep.pipelines.runner import JobSpec, RunOptions, run_job

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ok.num").write_text("1")
    (corpus / "big.num").write_text("100000")
    with open(os.path.join(os.fsencode(corpus), b"bad\xff.num"), "w") as fh:
        fh.write("2")
    items = list_items([str(corpus)], [".num"])
    assert sorted(i.id for i in items) == ["bad\\xff.num", "big.num", "ok.num"]
    items.append(Item("manifest\0id", str(corpus / "ok.num")))  # a NUL from a manifest row
    spec = JobSpec(
        kind="toy",
        producer={"model": "toy"},
        load_model=functools.partial(_load, 1.0),
        run_batch=_run,
        decode=_decode,
        items_per_call=2,
        unit="num",
    )
    opts = RunOptions(
        workers=1,
        cpus_per_worker=0.5,
        decode_cpus=0.25,
        dtype="float16",
        progress=False,
        shard_writes=shard_writes,  # "workers": the model actor writes the shard (ShardSink), one node
    )
    summary = run_job(spec, items, tmp_path / "store", opts)
    assert summary["shard_writes"] == shard_writes
    assert (summary["ok"], summary["failed"]) == (2, 2)
    assert summary["failed_by_stage"] == {"store": 2}
    store = FeatureStore(tmp_path / "store")
    assert sorted(store.ids()) == ["bad\\xff.num", "ok.num"]
    errors = {e["id"]: e["message"] for e in store.errors()}
    assert "value out of float16 range" in errors["big.num"]
    assert "invalid item id" in errors["manifest\\x00id"]
    # the rerun skips what is done and records the same errors again, without dying
    again = run_job(spec, items, tmp_path / "store", opts)
    assert (again["skipped"], again["failed"]) == (2, 2)


# -- npz-dir export names ---------------------------------------------------------------------------------


def test_npz_dir_names_are_one_to_one_with_ids(tmp_path):
    ids = ["a/../b", "a%2F..%2Fb", "x" * 10_000, "plain/name", "100%", ".", ".."]
    names = [file_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    assert all(len(part.encode()) <= 255 for n in names for part in n.split("/"))
    rng = np.random.default_rng(1)
    records = {i: region_record(rng, n=2, dim=4) for i in ids}
    assert write_npz_dir(records.items(), tmp_path / "npz") == len(ids)
    mapping = json.loads((tmp_path / "npz" / "index.json").read_text())
    assert set(mapping) == set(ids)
    for item_id, name in mapping.items():
        np.testing.assert_array_equal(read_npz(tmp_path / "npz" / name)["x"], records[item_id]["features"])
