"""The pipeline core on a local Ray with a toy job: resume, error records, model failures, dead workers."""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vlprep.pipelines.inputs import Item
from vlprep.pipelines.runner import Failure, JobSpec, ModelWorker, RunOptions, decode_batch, run_job
from vlprep.store import FeatureStore


def _decode(item: Item) -> int:
    text = Path(item.path).read_text()
    return int(text)  # ValueError for a "broken" file


def _load(scale: float) -> float:
    return scale


def _run(model: float, batch: list[tuple[Item, int]], crash_marker: str | None = None) -> list:
    out = []
    for _item, value in batch:
        if value == 13 and crash_marker and not os.path.exists(crash_marker):
            Path(crash_marker).write_text("crashed once")
            os._exit(1)  # a worker that dies mid-batch, the first time only
        if value == 7:
            raise RuntimeError("seven is unlucky")
        out.append(
            Failure("model", "negative")
            if value < 0
            else {"features": np.full((value % 3 + 1, 4), value * model)}
        )
    return out


def _spec(crash_marker: str | None = None) -> JobSpec:
    return JobSpec(
        kind="toy",
        producer={"model": "toy", "scale": 0.5},
        load_model=functools.partial(_load, 0.5),
        run_batch=functools.partial(_run, crash_marker=crash_marker),
        decode=_decode,
        items_per_call=3,
        unit="num",
    )


@pytest.fixture(scope="module")
def ray_by_value(ray_local):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return ray_local


def _corpus(tmp_path: Path, values: list[str]) -> list[Item]:
    items = []
    for n, value in enumerate(values):
        path = tmp_path / f"{n:02d}.txt"
        path.write_text(value)
        items.append(Item(f"n/{n:02d}", str(path)))
    return items


def test_worker_isolates_failing_items():
    worker = ModelWorker(functools.partial(_load, 2.0), _run)
    decoded = decode_batch(
        _decode,
        [
            Item("a", "/nonexistent"),
        ],
    )
    assert isinstance(decoded[0][1], Failure) and decoded[0][1].stage == "decode"
    batch = [(Item("x", "x"), 2), (Item("y", "y"), 7), (Item("z", "z"), -1)] + decoded
    result = worker.process(batch)
    outcomes = dict(result["outcomes"])
    assert np.allclose(outcomes["x"]["features"], 4.0)
    assert outcomes["y"] == Failure("model", "RuntimeError: seven is unlucky")
    assert outcomes["z"] == Failure("model", "negative")
    assert outcomes["a"].stage == "decode"


def test_run_resume_errors_and_dead_worker(ray_by_value, tmp_path):
    values = ["1", "2", "oops", "4", "13", "7", "", "8", "10", "-1"]
    items = _corpus(tmp_path, values)
    out = tmp_path / "store"
    opts = RunOptions(workers=2, cpus_per_worker=0.5, decode_cpus=0.25, shard_size=2, progress=False)
    summary = run_job(_spec(str(tmp_path / "crashed")), items, out, opts)

    assert (tmp_path / "crashed").exists()
    assert summary["worker_deaths"] >= 1 and summary["retried"] >= 1
    assert (summary["ok"], summary["failed"], summary["skipped"]) == (6, 4, 0)
    assert summary["failed_by_stage"] == {"decode": 2, "model": 2}
    store = FeatureStore(out)
    good = {
        f"n/{n:02d}": int(v)
        for n, v in enumerate(values)
        if v.lstrip("-").isdigit() and int(v) not in (7, -1)
    }
    assert sorted(store.ids()) == sorted(good)
    for item_id, value in good.items():
        record = store[item_id]
        assert record["features"].shape == (value % 3 + 1, 4)
        assert np.allclose(record["features"], value * 0.5)
        assert record["path"].endswith(f"{item_id[2:]}.txt")
    errors = {e["id"]: e for e in store.errors()}
    assert set(errors) == {"n/02", "n/05", "n/06", "n/09"}
    assert errors["n/02"]["stage"] == "decode" and "ValueError" in errors["n/02"]["message"]
    assert errors["n/05"]["source"].endswith("05.txt")

    # fix one broken input and run again: committed ids are skipped, only the failed ones retried
    Path(items[2].path).write_text("3")
    again = run_job(_spec(), items, out, opts)
    assert (again["ok"], again["failed"], again["skipped"]) == (1, 3, 6)
    store = FeatureStore(out)
    assert len(store) == 7 and np.allclose(store["n/02"]["features"], 1.5)
    assert len(FeatureStore(out).meta["runs"]) == 2


def test_changed_parameters_are_refused(ray_by_value, tmp_path):
    from vlprep.store import StoreMismatchError

    items = _corpus(tmp_path, ["1", "2"])
    opts = RunOptions(workers=1, cpus_per_worker=0.5, progress=False)
    run_job(_spec(), items, tmp_path / "s", opts)
    other = _spec()
    other.producer = {"model": "toy", "scale": 0.25}
    with pytest.raises(StoreMismatchError, match="scale"):
        run_job(other, items, tmp_path / "s", opts)
    opts.overwrite = True
    assert run_job(other, items, tmp_path / "s", opts)["ok"] == 2


def test_resources_the_cluster_cannot_host_are_refused(ray_by_value, tmp_path):
    from vlprep.pipelines.runner import PipelineError

    items = _corpus(tmp_path, ["1"])
    with pytest.raises(PipelineError, match="GPUs"):
        run_job(_spec(), items, tmp_path / "g", RunOptions(gpus_per_worker=1, progress=False))
    with pytest.raises(PipelineError, match="decoding would starve"):
        run_job(_spec(), items, tmp_path / "c", RunOptions(workers=2, cpus_per_worker=1.0, progress=False))


def test_defaults_fill_the_cluster():
    from vlprep.pipelines.runner import fill_cluster

    # this machine: one worker with both cores' threads, the CPUs less one decode task reserved
    two = fill_cluster(RunOptions(), cpus=2, gpus=0)
    assert (two.workers, two.cpus_per_worker, two.threads_per_worker, two.gpus_per_worker) == (1, 1.75, 2, 0)
    # 16 cores: 4 workers x 4 threads; two such nodes: twice the workers
    big = fill_cluster(RunOptions(), cpus=16, gpus=0)
    assert (big.workers, big.threads_per_worker) == (4, 4) and big.workers * big.cpus_per_worker <= 15.75
    assert fill_cluster(RunOptions(), cpus=32, gpus=0, nodes=2).workers == 8
    # no decode tasks (video): nothing reserved
    assert fill_cluster(RunOptions(), cpus=2, gpus=0, decodes=False).cpus_per_worker == 2
    # GPUs: one worker per GPU, one CPU each, the rest for decoding
    gpu = fill_cluster(RunOptions(), cpus=16, gpus=8)
    assert (gpu.workers, gpu.gpus_per_worker, gpu.cpus_per_worker, gpu.threads_per_worker) == (8, 1, 1, 1)
    assert fill_cluster(RunOptions(), cpus=16, gpus=8, decodes=False).cpus_per_worker == 2  # video
    # what is given is kept; the rest is derived from it
    given = fill_cluster(RunOptions(workers=3, threads_per_worker=1), cpus=16, gpus=0)
    assert (given.workers, given.threads_per_worker, given.cpus_per_worker) == (3, 1, 5.25)
    assert fill_cluster(RunOptions(cpus_per_worker=0.5), cpus=2, gpus=0).workers == 3
    assert fill_cluster(RunOptions(gpus_per_worker=0), cpus=4, gpus=2).gpus_per_worker == 0


def test_workers_write_shards_by_default_on_one_node_and_progress_moves_per_item(ray_by_value, tmp_path):
    items = _corpus(tmp_path, [str(n) for n in (1, 2, 3, 4, 5, 6, 8, 9, 10, 11)])
    calls: list[int] = []
    opts = RunOptions(workers=2, cpus_per_worker=0.5, shard_size=100, progress=False)
    summary = run_job(_spec(), items, tmp_path / "s", opts, on_progress=calls.append)
    # auto: the actors see the store directory, so they write the shards and the driver commits them
    assert summary["shard_writes"] == "workers" and summary["ok"] == 10
    # items count as done when the model returns them, not only when their (single) shard is committed
    assert sum(calls) == 10 and len(calls) >= 4, calls
    store = FeatureStore(tmp_path / "s")
    assert sorted(store.ids()) == sorted(item.id for item in items)
    assert np.allclose(store["n/09"]["features"], 11 * 0.5)
    # a single worker on one node: the driver writes, beside the model instead of in its process
    one = RunOptions(workers=1, cpus_per_worker=0.5, progress=False)
    assert run_job(_spec(), items, tmp_path / "one", one)["shard_writes"] == "driver"


def _run_sized(model: float, batch: list[tuple[Item, int]]) -> list:
    return [{"features": np.full((1, 2), float(len(batch)))} for _ in batch]


def test_fast_models_get_several_batches_a_call_but_run_batch_never_more_than_one(ray_by_value, tmp_path):
    items = _corpus(tmp_path, [str(n) for n in range(90)])
    spec = replace(_spec(), run_batch=_run_sized)
    calls: list[int] = []
    opts = RunOptions(workers=1, cpus_per_worker=0.5, progress=False)
    summary = run_job(spec, items, tmp_path / "s", opts, on_progress=calls.append)
    assert summary["ok"] == 90 and summary["failed"] == 0
    # an instant model: after the first calls, one call carries several batches of 3 (Ray's per-call
    # cost amortised), the last ones one each (the end of the job keeps every worker busy)
    assert max(calls) > spec.items_per_call, calls
    store = FeatureStore(tmp_path / "s")
    assert {float(store[i]["features"][0, 0]) for i in store.ids()} == {3.0}
