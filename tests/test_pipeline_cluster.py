"""Model workers write shards from every node: a real two-node Ray cluster on this machine (two `ray
start`s, the second with its own resources), both writing into one store directory."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from vlprep.store import FeatureStore, StoreError, StoreWriter, verify

# The driver runs as its own process: this test process may already run a local Ray.
DRIVER = r"""
import json, sys
import numpy as np
from vlprep.pipelines.inputs import Item
from vlprep.pipelines.runner import Failure, JobSpec, RunOptions, run_job

def load():
    return 0.5

def run(model, batch):
    out = []
    for item, _ in batch:
        n = int(item.id.split("/")[1])
        features = np.full((n % 3 + 1, 4), n * model, np.float32)
        out.append(Failure("model", "thirteen") if n == 13 else {"features": features})
    return out

address, out, mode = sys.argv[1:4]
items = [Item(f"n/{n:02d}", f"/in/{n:02d}.txt") for n in range(40)]
spec = JobSpec(kind="toy", producer={"m": "toy"}, load_model=load, run_batch=run, items_per_call=3)
opts = RunOptions(
    workers=2, cpus_per_worker=0.4, shard_size=4, address=address, progress=False, shard_writes=mode
)
print("SUMMARY " + json.dumps(run_job(spec, items, out, opts)))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_cluster(gcs: str, temp_dir: str) -> None:
    """Ends the processes of this cluster only, by pid: those that name its GCS address or temp dir."""
    import psutil

    mine = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if proc.pid != os.getpid() and (gcs in cmdline or temp_dir in cmdline):
            mine.append(proc)
    for proc in mine:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(mine, timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


@pytest.fixture(scope="module")
def two_nodes():
    ray = str(Path(sys.executable).with_name("ray"))
    temp_dir = tempfile.mkdtemp(prefix="vlprep-2n-")  # short: Ray's socket paths must fit 107 bytes
    gcs = f"127.0.0.1:{_free_port()}"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    common = ["--num-cpus", "1", "--object-store-memory", str(80 * 2**20), "--disable-usage-stats"]
    try:
        subprocess.run(
            [
                ray,
                "start",
                "--head",
                "--port",
                gcs.split(":")[1],
                "--temp-dir",
                temp_dir,
                "--include-dashboard",
                "false",
                *common,
            ],
            check=True,
            env=env,
            capture_output=True,
            timeout=180,
        )
        subprocess.run(
            [ray, "start", "--address", gcs, "--resources", '{"node2": 1}', *common],
            check=True,
            env=env,
            capture_output=True,
            timeout=180,
        )
        yield gcs, env
    finally:
        _stop_cluster(gcs, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _drive(gcs: str, env: dict, out: Path, mode: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, gcs, str(out), mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("SUMMARY "))
    return json.loads(line[len("SUMMARY ") :])


def test_workers_on_two_nodes_write_shards_into_one_store(two_nodes, tmp_path):
    gcs, env = two_nodes
    out = tmp_path / "store"
    summary = _drive(gcs, env, out, "auto")  # auto: more than one node, so the workers write
    assert summary["shard_writes"] == "workers"
    assert (summary["ok"], summary["failed"]) == (39, 1) and summary["failed_by_stage"] == {"model": 1}
    assert len(summary["nodes"]) == 2, summary["nodes"]  # SPREAD: one worker per node

    store = FeatureStore(out)
    assert sorted(store.ids()) == sorted(f"n/{n:02d}" for n in range(40) if n != 13)
    for n in (0, 7, 39):
        record = store[f"n/{n:02d}"]
        np.testing.assert_array_equal(record["features"], np.full((n % 3 + 1, 4), n * 0.5, np.float32))
        assert record["path"] == f"/in/{n:02d}.txt"
    files = [s["file"] for s in store.shards()]
    assert all(f.startswith("w-") for f in files) and len(set(files)) == len(files)
    assert [e["id"] for e in store.errors()] == ["n/13"]
    assert verify(store).ok
    # shard files of both nodes are full shards of 4, except each worker's last one
    assert sum(s["items"] for s in store.shards()) == 39 and sum(s["items"] < 4 for s in store.shards()) <= 2

    again = _drive(gcs, env, out, "auto")  # resume: nothing new, the failed item tried again
    assert (again["ok"], again["failed"], again["skipped"]) == (0, 1, 39)


def test_a_shard_written_but_never_committed_is_adopted_by_the_next_writer(tmp_path):
    rng = np.random.default_rng(0)
    records = [{"features": rng.normal(size=(2, 3)).astype(np.float32)} for _ in range(4)]
    with StoreWriter(tmp_path / "s", kind="toy", shard_size=10) as writer:
        sink = writer.sink()
        assert sink.sees_store()
        lost = sink.write(["a", "b"], records[:2])  # its receipt never reached the driver
        kept = sink.write(["c"], records[2:3])
        twice = sink.write(["c", "d"], records[2:4])  # a retried item: "c" is also in `kept`
        writer.commit_written(kept)
        with pytest.raises(StoreError, match="already in the store"):
            writer.commit_written(kept)
        assert writer.pending(["a", "b", "c", "d"]) == ["a", "b", "d"]
    with StoreWriter(tmp_path / "s", kind="toy", shard_size=10) as writer:
        # the complete shard of this store is indexed, not extracted again; the one holding a committed
        # id is left alone for `vlprep repair` (never duplicated, never half-counted)
        assert writer.pending(["a", "b", "c", "d"]) == ["d"]
    store = FeatureStore(tmp_path / "s")
    assert sorted(store.ids()) == ["a", "b", "c"] and verify(store).ok
    np.testing.assert_array_equal(store["b"]["features"], records[1]["features"])
    assert all((tmp_path / "s" / "shards" / r["file"]).exists() for r in (lost, twice))


def test_worker_shards_written_before_any_commit_are_adopted(tmp_path):
    records = [{"features": np.full((1, 3), n, np.float32)} for n in range(3)]
    with StoreWriter(tmp_path / "s", kind="toy") as writer:
        sink = writer.sink()  # no schema yet: the first record defines it
        sink.write(["x", "y"], records[:2])
        sink.write(["z"], records[2:])  # the driver died before committing either
    with StoreWriter(tmp_path / "s", kind="toy") as writer:
        assert writer.pending(["x", "y", "z"]) == []
    store = FeatureStore(tmp_path / "s")
    assert sorted(store.ids()) == ["x", "y", "z"] and verify(store).ok
    assert store["z"]["features"][0, 0] == 2


def test_a_node_that_does_not_see_the_store_is_detected(tmp_path):
    from dataclasses import replace

    with StoreWriter(tmp_path / "s", kind="toy") as writer:
        sink = writer.sink()
        assert not replace(sink, meta_sha256="0" * 64).sees_store()
        assert not replace(sink, root=str(tmp_path / "elsewhere")).sees_store()
        with pytest.raises(StoreError, match="filesystem that every writing node shares"):
            writer.commit_written(
                {"file": "w-missing.h5", "ids": ["x"], "bytes": 1, "sha256": "", "schema": {}}
            )
