"""The store never destroys data: it refuses directories it does not own, refuses a damaged store with a
repair path, and `repair` rebuilds the index and store.json from the self-describing shards."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from store_helpers import CRASHED, crash_at, region_record, trace_steps

from vlprep.checksums import file_sha256
from vlprep.store import (
    FeatureStore,
    NotAStoreError,
    StoreDamagedError,
    StoreWriter,
    add_field,
    repair,
    verify,
)

VLPREP = [sys.executable, "-m", "vlprep.cli"]


def _make(path, n=10, shard_size=4):
    rng = np.random.default_rng(0)
    with StoreWriter(path, kind="regions", shard_size=shard_size, producer={"model": "m"}) as w:
        for i in range(n):
            w.add(f"img/{i}.jpg", region_record(rng, dim=8))
        w.error("img/bad.jpg", "/data/bad.jpg", "decode", "cannot identify image file")
    return path


def _snapshot(path):
    """ids, every record as raw bytes, and the sha256 of every file in shards/."""
    store = FeatureStore(path)
    records = {i: {k: np.asarray(v).tobytes() for k, v in r.items()} for i, r in store}
    shards = {p.name: file_sha256(p) for p in (path / "shards").iterdir()}
    ids = store.ids()
    store.close()
    return ids, records, shards


def _shard_files(path):
    return {p.name: file_sha256(p) for p in (path / "shards").iterdir()}


# -- someone else's directory -----------------------------------------------------------------------


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_directory_with_someone_elses_shards_folder_is_refused(tmp_path, overwrite):
    # a WebDataset layout: the names "shards" used to be taken as the writer's own and wiped
    (tmp_path / "wds" / "shards").mkdir(parents=True)
    for name in ("000000.tar", "000001.tar"):
        (tmp_path / "wds" / "shards" / name).write_bytes(b"user data " * 100)
    before = sorted(p.name for p in (tmp_path / "wds").rglob("*"))
    with pytest.raises(NotAStoreError, match="not a vlprep store"):
        StoreWriter(tmp_path / "wds", kind="regions", overwrite=overwrite)
    assert sorted(p.name for p in (tmp_path / "wds").rglob("*")) == before  # not even a lock file


def test_overwrite_deletes_only_this_stores_files(tmp_path):
    path = _make(tmp_path / "s")
    (path / "shards" / "99999.h5").write_bytes(b"not ours")  # a shard name without this store's uuid
    with pytest.raises(NotAStoreError, match="not\\s+this store's"):
        StoreWriter(path, kind="regions", overwrite=True)
    assert (path / "shards" / "99999.h5").read_bytes() == b"not ours"
    assert len(FeatureStore(path)) == 10
    (path / "shards" / "99999.h5").unlink()
    (path / "notes.txt").write_text("mine")
    rng = np.random.default_rng(1)
    with StoreWriter(path, kind="regions", producer={"model": "other"}, overwrite=True) as w:
        w.add("z", region_record(rng, dim=8))
    assert FeatureStore(path).ids() == ["z"] and (path / "notes.txt").read_text() == "mine"


def test_shards_carry_the_store_identity(tmp_path):
    import h5py

    path = _make(tmp_path / "s")
    meta = json.loads((path / "store.json").read_text())
    assert len(meta["uuid"]) == 32
    with h5py.File(path / "shards" / "00001.h5") as f:
        assert f.attrs["store_uuid"] == meta["uuid"]
        assert f.attrs["shard"] == 1 and f.attrs["generation"] == 0 and f.attrs["kind"] == "regions"
        assert json.loads(f.attrs["schema"]) == meta["schema"]
        assert json.loads(f.attrs["producer"]) == {"model": "m"}


# -- damaged index / store.json: refused unchanged, then repaired ------------------------------------


def _damage(path, how):
    index, meta = path / "index.sqlite", path / "store.json"
    if how == "index-truncate-0":
        index.write_bytes(b"")
    elif how == "index-truncate-half":
        data = index.read_bytes()
        index.write_bytes(data[: len(data) // 2])
    elif how == "index-random-bytes":
        index.write_bytes(np.random.default_rng(3).bytes(index.stat().st_size))
    elif how == "index-delete":
        index.unlink()
    elif how == "meta-delete":
        meta.unlink()
    elif how == "meta-truncate":
        text = meta.read_text()
        meta.write_text(text[: len(text) // 2])
    elif how == "meta-wrong-types":
        data = json.loads(meta.read_text())
        data.update(generation="0", schema=["features"])
        meta.write_text(json.dumps(data))


DAMAGE = [
    "index-truncate-0",
    "index-truncate-half",
    "index-random-bytes",
    "index-delete",
    "meta-delete",
    "meta-truncate",
    "meta-wrong-types",
]


@pytest.mark.parametrize("how", DAMAGE)
def test_damage_is_refused_unchanged_then_repaired(tmp_path, how):
    path = _make(tmp_path / "s")
    ids, records, shards = _snapshot(path)
    _damage(path, how)
    for attempt in (
        lambda: StoreWriter(path, kind="regions"),
        lambda: StoreWriter(path, kind="regions", overwrite=True),
        lambda: add_field(path, "extra", lambda i, r: 1),
    ):
        with pytest.raises(StoreDamagedError, match=f"vlprep repair {path}"):
            attempt()
        assert _shard_files(path) == shards  # no writer or rerun deleted a shard
    if how != "index-truncate-half":  # a half index may still answer the first queries a reader asks
        with pytest.raises(StoreDamagedError, match="vlprep repair"):
            FeatureStore(path)

    report = repair(path, dry_run=True)
    assert report.changed and _shard_files(path) == shards
    report = repair(path)
    assert report.index == ("rebuilt" if how.startswith("index") else "ok")
    assert report.meta == ("rebuilt" if how.startswith("meta") else "ok")
    assert report.items == len(ids) and not [q for q in report.quarantined if q["file"].startswith("shards")]
    assert _snapshot(path) == (ids, records, shards)
    store = FeatureStore(path)
    assert verify(store).ok
    if how.startswith("meta"):
        assert [e["id"] for e in store.errors()] == ["img/bad.jpg"]
        assert store.meta["producer"] == {"model": "m"} and store.meta["kind"] == "regions"
    else:
        assert report.errors_lost is None or report.errors_kept == 1
    # what could not be used was moved aside, never deleted
    assert (path / "quarantine").is_dir() or how in ("index-delete", "meta-delete")
    # and the repaired store is writable again
    with StoreWriter(path, kind="regions", producer={"model": "m"}) as w:
        w.add("new", region_record(np.random.default_rng(9), dim=8))
    assert len(FeatureStore(path)) == len(ids) + 1


def test_repair_adopts_an_unindexed_complete_shard_and_quarantines_duplicates(tmp_path):
    path = _make(tmp_path / "s", n=6, shard_size=3)
    # a complete shard whose index transaction never ran: copy shard 1 to number 2 with new ids is
    # not possible by hand, so take a real orphan: write a third shard and drop its index rows
    with StoreWriter(path, kind="regions") as w:
        rng = np.random.default_rng(5)
        for i in range(3):
            w.add(f"late/{i}", region_record(rng, dim=8))
    import sqlite3

    with sqlite3.connect(path / "index.sqlite") as conn:
        conn.execute("DELETE FROM items WHERE shard = 2")
        conn.execute("DELETE FROM shards WHERE shard = 2")
    conn.close()
    import shutil

    shutil.copy(path / "shards" / "00000.h5", path / "shards" / "00007.h5")  # duplicate ids, wrong number
    report = repair(path)
    assert report.adopted == ["00002.h5"]
    assert {q["file"] for q in report.quarantined} == {"shards/00007.h5"}
    assert (path / "quarantine" / "00007.h5").is_file()
    store = FeatureStore(path)
    assert len(store) == 9 and "late/2" in store and verify(store).ok


def test_cli_refuses_a_damaged_store_with_exit_2_and_repairs_it(tmp_path):
    path = _make(tmp_path / "s")
    (path / "index.sqlite").write_bytes(b"garbage" * 10)
    proc = subprocess.run([*VLPREP, "inspect", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and f"vlprep repair {path}" in proc.stderr
    dry = subprocess.run([*VLPREP, "repair", str(path), "--dry-run"], capture_output=True, text=True)
    assert dry.returncode == 0 and "would rebuild index.sqlite" in dry.stdout
    assert (path / "index.sqlite").read_bytes() == b"garbage" * 10
    done = subprocess.run([*VLPREP, "repair", str(path), "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["index"] == "rebuilt" and result["items"] == 10
    assert subprocess.run([*VLPREP, "inspect", str(path), "--verify"], capture_output=True).returncode == 0


@pytest.mark.parametrize("how", ["index-truncate-half", "meta-wrong-types"])
def test_a_job_refuses_a_damaged_store_before_starting_ray(tmp_path, how):
    from PIL import Image

    path = _make(tmp_path / "s")
    _damage(path, how)
    before = _shard_files(path)
    Image.new("RGB", (32, 24), (90, 120, 30)).save(tmp_path / "a.png")
    # Ray would make its session directory under RAY_TMPDIR as it starts: it must never get that far
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = str(tmp_path / "ray")
    proc = subprocess.run(
        [*VLPREP, "regions", str(tmp_path / "a.png"), "--out", str(path), "--weights", "random"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and f"vlprep repair {path}" in proc.stderr
    assert not (tmp_path / "ray").exists()
    assert _shard_files(path) == before


# -- add_field killed between the index switch and store.json ------------------------------------------


def _tokens(item_id, record):
    return (record["features"][:, 0] > 0).astype(np.int32)


def test_add_field_killed_after_the_index_switch_loses_nothing(tmp_path):
    path = _make(tmp_path / "s")
    reference = _make(tmp_path / "ref")
    steps = trace_steps(lambda: add_field(reference, "tokens", _tokens))
    k = steps.index("json_write", steps.index("sql_switch_generation"))
    assert crash_at(k, lambda: add_field(path, "tokens", _tokens)) == CRASHED
    # the rerun (what `tokens assign --in-place` does again) must not reuse the switched files' names
    add_field(path, "tokens", _tokens)
    store, ref = FeatureStore(path), FeatureStore(reference)
    assert store.schema == ref.schema and store.ids() == ref.ids()
    for (_, a), (_, b) in zip(store, ref):
        for name in b:
            np.testing.assert_array_equal(a[name], b[name])
    assert verify(store).ok


def test_a_subfolder_in_shards_is_ignored(tmp_path):
    path = _make(tmp_path / "s")
    (path / "shards" / "extra").mkdir()
    with StoreWriter(path, kind="regions") as w:
        w.add("one more", region_record(np.random.default_rng(2), dim=8))
    store = FeatureStore(path)
    assert len(store) == 11 and (path / "shards" / "extra").is_dir()
    report = verify(store)
    assert report.ok and any("extra: a directory" in n for n in report.notes)


def test_repair_gc_removes_only_superseded_generations(tmp_path):
    path = _make(tmp_path / "s")
    add_field(path, "tokens", _tokens)
    files = sorted(p.name for p in (path / "shards").iterdir())
    assert len(files) == 6  # 3 superseded + 3 current
    report = repair(path)
    assert not report.changed and len(report.superseded) == 3
    report = repair(path, gc=True)
    assert report.removed == ["00000.h5", "00001.h5", "00002.h5"]
    left = sorted(p.name for p in (path / "shards").iterdir())
    assert left == ["00000.g1.h5", "00001.g1.h5", "00002.g1.h5"]
    assert verify(FeatureStore(path)).ok


def test_reader_opened_before_writes_sees_new_shards_and_generations(tmp_path):
    path = _make(tmp_path / "s", n=4)
    store = FeatureStore(path)
    assert store["img/0.jpg"]["num_boxes"] >= 1  # the shard map is now cached
    rng = np.random.default_rng(4)
    with StoreWriter(path, kind="regions") as w:
        for i in range(6):
            w.add(f"more/{i}", region_record(rng, dim=8))
    assert store["more/5"]["num_boxes"] >= 1  # a shard committed after the map was read
    add_field(path, "tokens", _tokens)
    old = store["img/1.jpg"]  # the old view: superseded files are kept
    repair(path, gc=True)
    store._readers.clear()  # as if the LRU had closed them
    again = store["img/1.jpg"]  # the old files are gone: the map is refreshed, the new file read
    for name in old:
        np.testing.assert_array_equal(old[name], again[name])
    assert os.path.basename(store._files[0]) == "00000.g1.h5"


def test_a_store_written_before_identities_is_still_written_and_overwritten(tmp_path):
    import h5py

    path = _make(tmp_path / "s", n=6, shard_size=3)
    meta = json.loads((path / "store.json").read_text())
    del meta["uuid"]
    (path / "store.json").write_text(json.dumps(meta))
    for shard in (path / "shards").iterdir():
        with h5py.File(shard, "r+") as f:
            for key in ("store_uuid", "shard", "generation"):
                del f.attrs[key]
    (path / "shards" / "00009.h5").write_bytes(b"an orphan without identity: never deleted")
    import sqlite3

    with sqlite3.connect(path / "index.sqlite") as conn:  # the shard edits changed their checksums
        for shard in (path / "shards").glob("0000[0-1].h5"):
            conn.execute(
                "UPDATE shards SET sha256 = ?, bytes = ? WHERE file = ?",
                (file_sha256(shard), shard.stat().st_size, shard.name),
            )
    conn.close()
    with StoreWriter(path, kind="regions") as w:
        w.add("new", region_record(np.random.default_rng(8), dim=8))
    assert len(FeatureStore(path)) == 7 and (path / "shards" / "00009.h5").exists()
    assert len(json.loads((path / "store.json").read_text())["uuid"]) == 32
    # repair keeps the indexed shards that predate identities; only the unindexed orphan is moved aside
    report = repair(path, dry_run=True)
    assert [q["file"] for q in report.quarantined] == ["shards/00009.h5"] and report.items == 7
    with pytest.raises(NotAStoreError, match="00009.h5"):
        StoreWriter(path, kind="regions", overwrite=True)
    (path / "shards" / "00009.h5").unlink()
    StoreWriter(path, kind="regions", overwrite=True).close()
    assert len(FeatureStore(path)) == 0 and not list((path / "shards").iterdir())


def test_shards_written_by_workers_carry_the_identity_and_are_rebuilt(tmp_path):
    """ShardSink files (`w-<hex>.h5`, numbered only in the index) survive a lost index: repair gives
    them numbers again; an uncommitted one is adopted, never deleted."""
    import h5py

    path = tmp_path / "s"
    rng = np.random.default_rng(6)
    records = {f"w/{i}": region_record(rng, dim=8) for i in range(5)}
    with StoreWriter(path, kind="regions", producer={"model": "m"}) as w:
        sink = w.sink()
        w.commit_written(sink.write(["w/0", "w/1"], [records["w/0"], records["w/1"]]))
        w.commit_written(sink.write(["w/2", "w/3"], [records["w/2"], records["w/3"]]))
        lost = sink.write(["w/4"], [records["w/4"]])  # its receipt never reached the driver
    meta = json.loads((path / "store.json").read_text())
    with h5py.File(path / "shards" / lost["file"]) as f:
        assert f.attrs["store_uuid"] == meta["uuid"] and f.attrs["shard"] == -1
    with StoreWriter(path, kind="regions") as w:  # the next writer adopts it
        assert w.pending(list(records)) == []
    assert (path / "shards" / lost["file"]).is_file() and len(FeatureStore(path)) == 5
    ids, recs, shards = _snapshot(path)
    (path / "index.sqlite").unlink()
    report = repair(path)
    assert report.index == "rebuilt" and report.items == 5 and not report.quarantined
    store = FeatureStore(path)
    assert sorted(store.ids()) == sorted(records) and verify(store).ok
    for item_id in ids:
        assert {k: np.asarray(v).tobytes() for k, v in store[item_id].items()} == recs[item_id]
    assert _shard_files(path) == shards


def test_repair_refuses_what_is_not_a_store_without_writing_into_it(tmp_path):
    (tmp_path / "wds" / "shards").mkdir(parents=True)
    (tmp_path / "wds" / "shards" / "000000.tar").write_bytes(b"user data")
    for target in (tmp_path / "wds", tmp_path / "nowhere"):
        with pytest.raises(NotAStoreError, match="not a vlprep store"):
            repair(target)
    assert sorted(p.name for p in (tmp_path / "wds").rglob("*")) == ["000000.tar", "shards"]
