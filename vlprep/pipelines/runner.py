"""The shared pipeline core: items -> skip committed ids -> decode (Ray CPU tasks) -> model (actor pool)
-> the driver's StoreWriter.

Ray core rather than Ray Data: the driver must own the one StoreWriter (HDF5 shards are written by one
process), every item needs its own error record instead of a dropped block, resume is the store's
`pending()`, and a dead actor must be replaced with its items retried. With `ray.wait` over a bounded set of
in-flight calls all of that is a short loop, and backpressure is exact: at most
`workers * in_flight_per_worker` calls (each of one model batch, or of a few for a fast model: see
CALL_SECONDS) are decoded or being processed at any time."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import math
import os
import queue
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vlprep.pipelines.inputs import Item


class PipelineError(RuntimeError):
    """The job cannot go on (model cannot load, the cluster cannot host a worker, workers keep dying)."""


@dataclass(frozen=True)
class Failure:
    """An item that produced no record; it becomes an error row in the store."""

    stage: str
    message: str


@dataclass(frozen=True)
class Held:
    """An item whose record the worker keeps for its next shard (workers write shards); `measure` is
    the record's amount of media, counted when the shard is committed."""

    measure: float = 0.0


@dataclass
class JobSpec:
    """What a job runs. The callables are shipped to Ray workers, so they must be picklable (module-level
    functions or functools.partial of them)."""

    kind: str
    producer: dict | None
    load_model: Callable[[], Any]
    # (model, [(item, decoded)]) -> one record dict or Failure per input, in order; runs in a model actor
    run_batch: Callable[[Any, list[tuple[Item, Any]]], list[dict | Failure]]
    # item -> what run_batch receives; runs in a Ray CPU task; raising records a decode failure.
    # None: run_batch gets the item itself (e.g. video, whose extractor reads the file).
    decode: Callable[[Item], Any] | None = None
    items_per_call: int = 8
    unit: str = "item"
    # optional amount of media per record (seconds of video), summed into the summary
    measure: Callable[[dict], float] | None = None
    measure_name: str = "media_seconds"
    # model -> producer dict, asked of the first worker when `producer` is None
    describe: Callable[[Any], dict] | None = None
    # store each item's input path as the record's `path` field (media; not tokens, whose input is a store)
    record_path: bool = True


@dataclass
class RunOptions:
    """Ray resources and store settings of a job. `workers`, `cpus_per_worker`, `gpus_per_worker` and
    `threads_per_worker` left at None are chosen from the cluster when it is known (`fill_cluster`)."""

    workers: int | None = None
    cpus_per_worker: float | None = None
    gpus_per_worker: float | None = None
    threads_per_worker: int | None = None  # torch threads in each actor; default ceil(cpus_per_worker)
    decode_cpus: float = 0.25
    in_flight_per_worker: int = 2
    max_retries: int = 2
    max_worker_deaths: int | None = None  # default 10 + 2 * workers
    address: str | None = None
    num_cpus: int | None = None  # local Ray only
    shard_size: int = 1000
    dtype: str | None = None
    compression: str | None = None
    overwrite: bool = False
    progress: bool = True
    # finished batches waiting for the writer thread; beyond this the driver waits (backpressure)
    commit_queue: int = 8
    # who writes shard files: "driver", "workers" (each model actor writes complete shards into the
    # store directory, which every node must share; the driver commits them), or "auto" (workers when
    # every actor sees the store directory, which one node always does; else the driver)
    shard_writes: str = "auto"


SHARD_WRITES = ("auto", "driver", "workers")

# A call to a model actor carries whole model batches (`JobSpec.items_per_call` items each), as many as
# make it last about CALL_SECONDS: one Ray call costs about a millisecond of driver, raylet and actor CPU,
# which at 8 items a call of an instant model is a tenth of a 2-core machine's time (pipeline_bench.py
# --null-model: 0.72-0.92x the bare writer at 1 batch a call, 0.94x at 8). A model that takes longer than
# this per batch (every real one on a CPU, the region extractor on a GPU at batch 8) gets one batch a call.
CALL_SECONDS = 0.1
MAX_BATCHES_PER_CALL = 16


# Torch threads per CPU worker when the cluster chooses: intra-op parallelism of a CNN scales well up
# to a few threads, beyond that more actors with fewer threads each use the cores better.
MAX_THREADS_PER_WORKER = 4


def fill_cluster(
    opts: RunOptions, cpus: float, gpus: float, nodes: int = 1, decodes: bool = True
) -> RunOptions:
    """The options with every resource left at None chosen to fill the cluster: on GPUs one worker per
    GPU (with one CPU, the rest left to decode tasks; all CPUs shared by the workers when they decode
    themselves); on CPUs workers x threads per worker = the node's CPUs, less one decode task's share
    (`decode_cpus`, when the job has decode tasks). Values given explicitly are kept."""
    decode = opts.decode_cpus if decodes else 0.0
    gpw = opts.gpus_per_worker
    if gpw is None:
        gpw = 1.0 if gpus >= 1 else 0.0
    workers, cpw = opts.workers, opts.cpus_per_worker
    if gpw > 0:
        if workers is None:
            workers = max(1, int(gpus // gpw + 1e-9))
        if cpw is None:
            # decode tasks take the spare CPUs; a job that decodes inside its actors (video) shares
            # them among the actors instead
            share = max(0.01, (cpus - decode) / workers)
            cpw = min(1.0, share) if decodes else share
    else:
        per_node = max(1.0, cpus / max(1, nodes))
        if workers is None and cpw is None:
            threads = opts.threads_per_worker or min(int(per_node), MAX_THREADS_PER_WORKER)
            workers = max(1, nodes * int(per_node // max(1, threads)))
        elif workers is None:
            workers = max(1, int((cpus - decode) // cpw + 1e-9))
        if cpw is None:
            cpw = max(0.01, (cpus - decode) / workers)
    threads = opts.threads_per_worker or max(1, math.ceil(cpw - 1e-9))
    return replace(
        opts, workers=workers, cpus_per_worker=round(cpw, 4), gpus_per_worker=gpw, threads_per_worker=threads
    )


def cpu_only(opts: RunOptions | None, device: str | None) -> RunOptions:
    """A model pinned to a non-CUDA device reserves no GPUs, whatever the cluster has."""
    opts = opts or RunOptions()
    if device and not str(device).startswith("cuda") and opts.gpus_per_worker is None:
        return replace(opts, gpus_per_worker=0.0)
    return opts


@dataclass
class _Batch:
    items: list[Item]
    attempts: int = 0


@dataclass
class _Tally:
    ok: int = 0
    failed: int = 0
    retried: int = 0
    worker_deaths: int = 0
    measure: float = 0.0
    nodes: Counter = field(default_factory=Counter)
    stages: Counter = field(default_factory=Counter)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _root_cause(exc: BaseException) -> str:
    """The original exception line at the end of a Ray error's remote traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def decode_batch(decode: Callable[[Item], Any], items: list[Item]) -> list[tuple[Item, Any]]:
    """Decodes each item, turning any exception into a Failure so that one bad file never fails a batch."""
    out = []
    for item in items:
        try:
            out.append((item, decode(item)))
        except Exception as exc:  # noqa: BLE001 - every decode problem is a per-item error record
            out.append((item, Failure("decode", _describe(exc))))
    return out


class ModelWorker:
    """A model actor: loads the model once, then processes batches."""

    def __init__(
        self,
        load_model: Callable[[], Any],
        run_batch: Callable,
        threads: int | None = None,
        describe: Callable[[Any], dict] | None = None,
        batch_size: int | None = None,
    ):
        if threads:
            with contextlib.suppress(ImportError):
                import torch

                torch.set_num_threads(threads)
        self.model = load_model()
        self.run_batch = run_batch
        self.batch_size = batch_size  # run_batch gets at most this many inputs (a call may hold more)
        self._describe = describe
        self._sink: Any = None
        self._held_ids: list[str] = []
        self._held: list[dict] = []
        # the shard being written on the writer thread, so that the model never waits for a write
        self._writing: concurrent.futures.Future | None = None
        self._writer_thread: concurrent.futures.ThreadPoolExecutor | None = None
        self.node = "local"  # outside Ray (direct use), the node is just this process
        with contextlib.suppress(ImportError):
            import ray

            # asking an uninitialised Ray for its context would start a local Ray
            if ray.is_initialized():
                self.node = ray.get_runtime_context().get_node_id()

    def ready(self) -> str:
        return self.node

    def describe(self) -> dict:
        return self._describe(self.model)

    def write_shards(
        self,
        sink: Any,
        shard_size: int = 1000,
        record_path: bool = True,
        measure: Callable[[dict], float] | None = None,
    ) -> bool:
        """From now on keep successful records and write them as complete shards through `sink` (a
        `vlprep.store.ShardSink`); returns False, changing nothing, when this node does not see the
        store's directory. `sink=None` goes back to returning records."""
        if sink is not None and not sink.sees_store():
            return False
        self._sink, self._shard_size, self._record_path, self._measure = (
            sink,
            shard_size,
            record_path,
            measure,
        )
        return True

    def process(self, *parts: list[tuple[Item, Any]]) -> dict:
        """Runs the model on the (item, decoded) pairs of one call, given as one or more lists (one per
        decode task), `batch_size` at a time."""
        start = time.perf_counter()
        decoded = [pair for part in parts for pair in part]
        results: dict[str, dict | Failure] = {}
        good = []
        for item, payload in decoded:
            if isinstance(payload, Failure):
                results[item.id] = payload
            else:
                good.append((item, payload))
        size = self.batch_size or len(good)
        for at in range(0, len(good), max(1, size)):
            results.update(self._run(good[at : at + size]))
        outcomes = [(item.id, results[item.id]) for item, _ in decoded]
        out = {"node": self.node, "pid": os.getpid(), "outcomes": outcomes}
        if self._sink is not None:
            out["outcomes"] = [
                (item_id, self._hold(item, outcome) if not isinstance(outcome, Failure) else outcome)
                for (item, _), (item_id, outcome) in zip(decoded, outcomes, strict=True)
            ]
            out["shards"] = []
            try:
                out["shards"] += self._written(wait=False)
                while len(self._held) >= self._shard_size:
                    # one shard in writing at a time: at most two shards of records in memory
                    out["shards"] += self._written(wait=True)
                    self._start_write(self._shard_size)
            except Exception as exc:  # noqa: BLE001 - the driver stops the job; the items stay pending
                out["write_error"] = _describe(exc)
        out["seconds"] = time.perf_counter() - start
        return out

    def flush(self) -> dict:
        """Finishes the shard in writing and writes the records held for a partial shard (the end of the
        job)."""
        out: dict[str, Any] = {"node": self.node, "shards": []}
        try:
            out["shards"] += self._written(wait=True)
            if self._held:
                self._start_write(len(self._held))
                out["shards"] += self._written(wait=True)
        except Exception as exc:  # noqa: BLE001 - as in process()
            out["write_error"] = _describe(exc)
        return out

    def _hold(self, item: Item, outcome: dict) -> Held | Failure:
        from vlprep.store import ItemError, StoreError

        record = dict(outcome)
        if self._record_path:
            record["path"] = item.path
        measure = float(self._measure(record)) if self._measure is not None else 0.0
        try:
            stored = self._sink.check(item.id, record)
        except ItemError as exc:  # an invalid id, a value out of float16 range: this item only
            return Failure("store", str(exc))
        except StoreError:
            # a record that does not fit the store's schema: its shard's write fails and stops the job,
            # as the driver's add() does
            stored = record
        self._held_ids.append(item.id)
        self._held.append(stored)
        return Held(measure)

    def _start_write(self, count: int) -> None:
        """Writes the first `count` held records as one shard on the writer thread."""
        if self._writer_thread is None:
            self._writer_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="vlprep-shard")
        ids, records = self._held_ids[:count], self._held[:count]
        del self._held_ids[:count], self._held[:count]
        self._writing = self._writer_thread.submit(self._sink.write, ids, records)

    def _written(self, wait: bool) -> list[dict]:
        """The receipt of the shard in writing once it is written (waiting for it if `wait`); a failed
        write raises here."""
        if self._writing is None or not (wait or self._writing.done()):
            return []
        writing, self._writing = self._writing, None
        receipt = writing.result()
        receipt["node"] = self.node
        return [receipt]

    def _run(self, good: list[tuple[Item, Any]]) -> dict[str, dict | Failure]:
        try:
            outs = self.run_batch(self.model, good)
            if len(outs) != len(good):
                raise RuntimeError(f"run_batch returned {len(outs)} results for {len(good)} inputs")
            return {item.id: out for (item, _), out in zip(good, outs, strict=True)}
        except Exception as exc:  # noqa: BLE001 - isolate the item that fails by running one at a time
            if len(good) == 1:
                return {good[0][0].id: Failure("model", _describe(exc))}
        results = {}
        for pair in good:
            results.update(self._run([pair]))
        return results


RAY_LOG_LEVEL_VARIABLE = "VLPREP_RAY_LOGGING_LEVEL"


def ray_log_options() -> dict[str, Any]:
    """ray.init arguments that keep Ray's output out of vlprep's: no worker logs forwarded to the driver,
    and Ray's own log lines at the level the CLI's -v/-q chose (cli/logs.py), INFO by default."""
    return {"log_to_driver": False, "logging_level": os.environ.get(RAY_LOG_LEVEL_VARIABLE, "INFO")}


def _drop_token_notice(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Token authentication is enabled")


def _quiet_token_notice() -> None:
    """A new local Ray enables token authentication (the secure default) and says so with a WARNING on
    every run, on stderr, between vlprep's own lines. That one notice is dropped; the token, and every
    other message of Ray's, stay (a warning that authentication is *disabled* is still shown)."""
    notice = logging.getLogger("ray._private.authentication.authentication_token_setup")
    if _drop_token_notice not in notice.filters:
        notice.addFilter(_drop_token_notice)


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Joins the cluster at `address` (or $RAY_ADDRESS), else starts a local Ray, never silently joining
    another cluster found on the machine; reuses Ray when this process already initialised it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        yield ray
        return
    # Under `ray job submit` the driver is told its cluster through RAY_ADDRESS.
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, **ray_log_options())
    else:
        _quiet_token_notice()
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **ray_log_options())
    try:
        yield ray
    finally:
        ray.shutdown()


def _cluster(ray: Any) -> tuple[float, float, int]:
    """(CPUs, GPUs, alive nodes) of the cluster."""
    total = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    return total.get("CPU", 0.0), total.get("GPU", 0.0), max(1, nodes)


def _check_resources(ray: Any, opts: RunOptions) -> None:
    cpus, gpus, _ = _cluster(ray)
    if opts.gpus_per_worker > 0 and gpus < opts.gpus_per_worker:
        raise PipelineError(f"--gpus-per-worker {opts.gpus_per_worker} but the Ray cluster has {gpus:g} GPUs")
    if opts.cpus_per_worker + opts.decode_cpus > cpus:
        raise PipelineError(
            f"one worker needs {opts.cpus_per_worker:g} CPUs plus {opts.decode_cpus:g} for decoding, "
            f"but the Ray cluster has {cpus:g}; lower --cpus-per-worker"
        )
    need = opts.workers * opts.cpus_per_worker + opts.decode_cpus
    if need > cpus + 1e-9:
        raise PipelineError(
            f"{opts.workers} workers x {opts.cpus_per_worker:g} CPUs plus {opts.decode_cpus:g} for decoding "
            f"need {need:g} CPUs, the Ray cluster has {cpus:g}: decoding would starve. "
            "Use fewer --workers or a fractional --cpus-per-worker"
        )
    if opts.gpus_per_worker > 0 and opts.workers * opts.gpus_per_worker > gpus + 1e-9:
        raise PipelineError(f"{opts.workers} workers x {opts.gpus_per_worker:g} GPUs exceed the {gpus:g}")


class _Pool:
    """Model actors with replacement of dead ones."""

    def __init__(self, ray: Any, spec: JobSpec, opts: RunOptions):
        self.ray = ray
        threads = opts.threads_per_worker
        self.actor_cls = ray.remote(ModelWorker).options(
            num_cpus=opts.cpus_per_worker,
            num_gpus=opts.gpus_per_worker,
            max_restarts=0,
            scheduling_strategy="SPREAD",
        )
        self.args = (spec.load_model, spec.run_batch, threads, spec.describe, spec.items_per_call)
        self.actors = [self.actor_cls.remote(*self.args) for _ in range(opts.workers)]
        self.load = [0] * opts.workers
        self.sink_args: tuple | None = None  # write_shards arguments, for replacement actors too

    def wait_ready(self) -> list[str]:
        try:
            return self.ray.get([a.ready.remote() for a in self.actors])
        except self.ray.exceptions.RayActorError as exc:
            raise PipelineError(f"a model worker failed to start: {_root_cause(exc)}") from exc

    def describe(self) -> dict:
        try:
            return self.ray.get(self.actors[0].describe.remote())
        except self.ray.exceptions.RayError as exc:
            raise PipelineError(f"the model worker cannot describe its model: {_root_cause(exc)}") from exc

    def write_shards(self, *args: Any) -> bool:
        """Has every actor write its own shards; False (and none does) if any cannot see the store."""
        seen = self.ray.get([a.write_shards.remote(*args) for a in self.actors])
        if not all(seen):
            self.ray.get([a.write_shards.remote(None) for a in self.actors])
            return False
        self.sink_args = args
        return True

    def pick(self, limit: int) -> int | None:
        slot = min(range(len(self.actors)), key=lambda i: self.load[i])
        return slot if self.load[slot] < limit else None

    def replace(self, slot: int, handle: Any) -> bool:
        """Replaces the actor in `slot` if it is still `handle`; False when already replaced."""
        if self.actors[slot] is not handle:
            return False
        with contextlib.suppress(Exception):
            self.ray.kill(handle, no_restart=True)
        self.actors[slot] = self.actor_cls.remote(*self.args)
        if self.sink_args is not None:
            self.actors[slot].write_shards.remote(*self.sink_args)  # ordered before its first batch
        return True

    def shutdown(self) -> None:
        for actor in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor, no_restart=True)


def _batches(items: Sequence[Item], size: int) -> deque[_Batch]:
    size = max(1, size)
    return deque(_Batch(list(items[i : i + size])) for i in range(0, len(items), size))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_job(
    spec: JobSpec,
    items: Sequence[Item],
    out: str | Path,
    options: RunOptions | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict:
    """Runs `spec` over `items` into the store at `out` and returns the run summary (also appended to the
    store's runs). Items already committed are skipped; failed items become error records. `on_progress(n)`
    is called as items finish (a caller's own progress display).

    When `spec.producer` is None the first model worker describes itself (`spec.describe`) before the
    store is opened, so the model is never loaded in the driver."""
    from vlprep.store import StoreWriter
    from vlprep.store.writer import check_writable

    opts = options or RunOptions()
    if opts.workers is not None and opts.workers < 1:
        raise PipelineError("--workers must be at least 1")
    if spec.producer is None and spec.describe is None:
        raise PipelineError("a job needs a producer or a describe function")
    if opts.shard_writes not in SHARD_WRITES:
        raise PipelineError(f"--shard-writes takes {', '.join(SHARD_WRITES)}, not {opts.shard_writes!r}")
    # a damaged store or someone else's directory is refused now, not after Ray and the models started
    check_writable(out, overwrite=opts.overwrite)
    if spec.decode is None and opts.decode_cpus:
        opts = replace(opts, decode_cpus=0.0)  # no decode tasks: nothing to reserve for them
    started_at, t0 = _now(), time.perf_counter()
    tally = _Tally()
    by_id = {item.id: item for item in items}
    with contextlib.ExitStack() as stack:
        pool: _Pool | None = None
        ray: Any = None

        def start_pool() -> _Pool:
            nonlocal ray, opts
            ray = stack.enter_context(ray_session(opts.address, opts.num_cpus))
            cpus, gpus, nodes = _cluster(ray)
            opts = fill_cluster(opts, cpus, gpus, nodes, decodes=spec.decode is not None)
            _check_resources(ray, opts)
            started = _Pool(ray, spec, opts)
            stack.callback(started.shutdown)
            started.wait_ready()
            return started

        producer = spec.producer
        if producer is None and not opts.overwrite:
            # A resume with nothing left to do needs neither Ray nor a model: the store keeps its producer.
            producer = _producer_if_complete(out, list(by_id))
        if producer is None:
            pool = start_pool()
            producer = pool.describe()
        writer = stack.enter_context(
            StoreWriter(
                out,
                kind=spec.kind,
                shard_size=opts.shard_size,
                producer=producer,
                dtype=opts.dtype,
                compression=opts.compression,
                overwrite=opts.overwrite,
            )
        )
        todo = [by_id[i] for i in writer.pending(list(by_id))]
        startup = 0.0
        shard_writes = "driver"
        if todo:
            if pool is None:
                pool = start_pool()
            shard_writes = _choose_shard_writes(ray, pool, spec, opts, writer)
            startup = time.perf_counter() - t0
            _drive(ray, pool, spec, opts, todo, writer, tally, on_progress)
        seconds = time.perf_counter() - t0
        work_seconds = max(seconds - startup, 1e-9)
        summary = {
            "kind": spec.kind,
            "started_at": started_at,
            "finished_at": _now(),
            "total": len(by_id),
            "ok": tally.ok,
            "failed": tally.failed,
            "skipped": len(by_id) - len(todo),
            "seconds": round(seconds, 3),
            "items_per_s": round(tally.ok / seconds, 3) if seconds > 0 else 0.0,
            "startup_seconds": round(startup, 3),
            "items_per_s_after_startup": round(tally.ok / work_seconds, 3) if todo else 0.0,
            "failed_by_stage": dict(tally.stages),
            "retried": tally.retried,
            "worker_deaths": tally.worker_deaths,
            "nodes": dict(tally.nodes),
            "shard_writes": shard_writes,
            "options": {k: v for k, v in asdict(opts).items() if k != "progress"},
        }
        if spec.measure is not None:
            summary[spec.measure_name] = round(tally.measure, 3)
            summary[f"{spec.measure_name}_per_s"] = round(tally.measure / seconds, 3) if seconds > 0 else 0.0
        writer.record_run(summary)
    return summary


def _choose_shard_writes(ray: Any, pool: _Pool, spec: JobSpec, opts: RunOptions, writer: Any) -> str:
    """ "workers" when asked for, or with "auto", and every actor sees the store's directory; else
    "driver". With "auto", several workers write on one node too: the driver then only commits index
    rows (a seventeenth of its CPU per item), records never cross the object store, and the actors
    write shards in parallel. A single worker on a single node leaves the writing to the driver: that
    takes it out of the model's process into one that is otherwise idle (benchmarks/pipeline_bench.py
    --null-model, one worker on 2 cores: 0.96x the bare writer against 0.91-0.93x). Asked for
    explicitly and impossible: an error."""
    if opts.shard_writes == "driver":
        return "driver"
    if opts.shard_writes == "auto" and opts.workers == 1 and _cluster(ray)[2] == 1:
        return "driver"
    args = (writer.sink(), opts.shard_size, spec.record_path, spec.measure)
    if pool.write_shards(*args):
        return "workers"
    message = (
        f"some model workers do not see the store directory {writer.root}: workers can write shards "
        "only into a filesystem every node shares (NFS, Lustre, a mounted bucket)"
    )
    if opts.shard_writes == "workers":
        raise PipelineError(message + "; use --shard-writes driver")
    print(f"vlprep: {message}; the driver writes every shard", file=sys.stderr)
    return "driver"


class _Committer:
    """The store's side of the driver, on its own thread: every per-item step (record dicts, error rows,
    shard writes and index commits) runs here, so the driver's loop only waits on Ray and hands results
    over. The queue is bounded: when shards cannot be written as fast as results arrive, the driver
    waits, and no more batches are submitted (backpressure instead of memory growth). Returned arrays
    are read-only views of Ray's object store (zero copy); they are copied once, into the shard."""

    def __init__(
        self,
        writer: Any,
        spec: JobSpec,
        tally: _Tally,
        bar: Any,
        on_progress: Callable[[int], None] | None,
        size: int,
    ) -> None:
        self.writer, self.spec, self.tally, self.bar = writer, spec, tally, bar
        self.on_progress = on_progress
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, size))
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="vlprep-commit", daemon=True)
        self.thread.start()

    def put(self, entry: tuple) -> None:
        while True:
            self.raise_error()
            try:
                self.queue.put(entry, timeout=0.5)
                return
            except queue.Full:
                continue

    def raise_error(self) -> None:
        if self.error is not None:
            raise PipelineError(f"writing the store failed: {_describe(self.error)}") from self.error

    def close(self) -> None:
        """Commits what is queued, then stops the thread."""
        if self.thread.is_alive():
            if self.error is None:
                self.put(None)
            self.thread.join()
        self.raise_error()

    def _loop(self) -> None:
        while True:
            entry = self.queue.get()
            if entry is None:
                return
            try:
                if entry[0] == "shard":
                    self._commit_shard(*entry[1:])
                else:
                    self._commit(*entry)
            except BaseException as exc:  # noqa: BLE001 - handed to the driver, which stops the job
                self.error = exc
                return

    def _commit_shard(self, receipt: dict, measure: float) -> None:
        """A shard a worker wrote: its index rows in one transaction. (Its items already moved the
        progress bar when they came back from the model.)"""
        self.writer.commit_written(receipt)
        self.tally.ok += len(receipt["ids"])
        self.tally.measure += measure

    def _commit(self, items: list[Item], outcomes: list) -> None:
        from vlprep.store import ItemError

        spec, tally, writer = self.spec, self.tally, self.writer
        done = 0
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, Held):
                # counted as done now, committed with its worker's shard: the bar moves item by item
                done += 1
                continue
            if not isinstance(outcome, Failure):
                record = dict(outcome)
                if spec.record_path:
                    # absolute, so that rendering from another directory still finds the file
                    record["path"] = item.path if "://" in item.path else os.path.abspath(item.path)
                try:
                    writer.add(item.id, record)
                except ItemError as exc:  # an invalid id, a value out of float16 range: this item only
                    outcome = Failure("store", str(exc))
                else:
                    if spec.measure is not None:
                        tally.measure += float(spec.measure(record))
                    tally.ok += 1
            if isinstance(outcome, Failure):
                writer.error(item.id, item.path, outcome.stage, outcome.message)
                tally.failed += 1
                tally.stages[outcome.stage] += 1
            done += 1
        self._advance(done)

    def _advance(self, done: int) -> None:
        spec, tally = self.spec, self.tally
        if not done:
            return
        self.bar.update(done)
        if self.on_progress is not None:
            self.on_progress(done)
        postfix = {"failed": tally.failed} if tally.failed else {}
        if spec.measure is not None:
            rate = tally.measure / max(self.bar.format_dict["elapsed"], 1e-9)
            postfix[spec.measure_name.replace("_seconds", "_s") + "/s"] = f"{rate:.2f}"
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)


def _producer_if_complete(out: str | Path, ids: list[str]) -> dict | None:
    """The producer of the store at `out` when it already holds every one of `ids`, else None."""
    from vlprep.store import FeatureStore, StoreError
    from vlprep.store.layout import META_FILE

    if not (Path(out) / META_FILE).is_file():
        return None
    try:
        store = FeatureStore(out)
    except StoreError:
        return None  # the writer will say what is wrong with it
    try:
        if set(ids) - set(store.ids()):
            return None
        return store.producer
    finally:
        store.close()


def _drive(
    ray: Any,
    pool: _Pool,
    spec: JobSpec,
    opts: RunOptions,
    todo: list[Item],
    writer: Any,
    tally: _Tally,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    from tqdm import tqdm

    batches = _batches(todo, spec.items_per_call)
    decode_task = ray.remote(decode_batch).options(num_cpus=opts.decode_cpus) if spec.decode else None
    max_deaths = opts.max_worker_deaths if opts.max_worker_deaths is not None else 10 + 2 * opts.workers
    in_flight: dict[Any, tuple[_Batch, int, Any]] = {}
    bar = tqdm(total=len(todo), unit=spec.unit, disable=not opts.progress, dynamic_ncols=True, smoothing=0.1)
    committer = _Committer(writer, spec, tally, bar, on_progress, opts.commit_queue)
    # workers write shards: per actor slot, the items it holds for its next shard (retried if it dies)
    held: list[dict[str, Item]] = [{} for _ in pool.actors]
    measures: dict[str, float] = {}
    flushing: set[int] = set()

    call_slots = opts.workers * opts.in_flight_per_worker
    batch_seconds = 0.0  # the model's time per batch, as the actors measure it (0: not known yet)

    def next_call() -> list[_Batch]:
        """The batches of the next call: one, or as many fresh ones as last CALL_SECONDS, but never more
        than an equal share of what is left, so that the job's end keeps every worker busy."""
        group = [batches.popleft()]
        if group[0].attempts or not batch_seconds:
            return group
        share = (len(batches) + 1) // call_slots
        want = min(MAX_BATCHES_PER_CALL, math.ceil(CALL_SECONDS / batch_seconds), share)
        while len(group) < want and batches and not batches[0].attempts:
            group.append(batches.popleft())
        return group

    def lost(slot: int) -> None:
        items = list(held[slot].values())
        held[slot].clear()
        tally.retried += len(items)
        batches.extendleft(_Batch([item], 1) for item in reversed(items))

    def take_shards(slot: int, result: dict) -> None:
        for receipt in result.get("shards", ()):
            for item_id in receipt["ids"]:
                held[slot].pop(item_id, None)
            measure = sum(measures.pop(item_id, 0.0) for item_id in receipt["ids"])
            committer.put(("shard", receipt, measure))
        if "write_error" in result:
            raise PipelineError(
                f"a model worker (node {result['node'][:12]}) could not write a shard into "
                f"{writer.root}: {result['write_error']}; run the same command again to resume"
            )

    def retry(batch: _Batch, stage: str, message: str) -> None:
        # A batch that killed its worker is split, so that one poisonous item cannot sink the others.
        tally.retried += len(batch.items)
        attempts = batch.attempts + 1
        if len(batch.items) > 1:
            batches.extendleft(_Batch([item], attempts) for item in reversed(batch.items))
        elif attempts > opts.max_retries:
            failure = Failure(stage, f"{message} (after {attempts} attempts)")
            committer.put((batch.items, [failure]))
        else:
            batches.appendleft(_Batch(batch.items, attempts))

    try:
        while batches or in_flight or any(held):
            if not batches:
                # the queue is done: each idle worker writes what it holds as a last, partial shard
                for slot, actor in enumerate(pool.actors):
                    if held[slot] and slot not in flushing and pool.load[slot] == 0:
                        in_flight[actor.flush.remote()] = (_Batch([]), slot, actor)
                        flushing.add(slot)
            while batches:
                slot = pool.pick(opts.in_flight_per_worker)
                if slot is None:
                    break
                group = next_call()
                if decode_task is not None:  # one decode task per model batch, in parallel
                    parts = [decode_task.remote(spec.decode, batch.items) for batch in group]
                else:
                    parts = [[(item, item) for batch in group for item in batch.items]]
                batch = group[0] if len(group) == 1 else _Batch([item for b in group for item in b.items])
                actor = pool.actors[slot]
                ref = actor.process.remote(*parts)
                in_flight[ref] = (batch, slot, actor)
                pool.load[slot] += 1
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            committer.raise_error()
            for ref in ready:
                batch, slot, actor = in_flight.pop(ref)
                is_flush = not batch.items
                if is_flush:
                    flushing.discard(slot)
                elif pool.actors[slot] is actor:
                    pool.load[slot] -= 1
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    if pool.replace(slot, actor):
                        tally.worker_deaths += 1
                        pool.load[slot] = 0
                        lost(slot)  # the records it held for its next shard died with it
                        if tally.worker_deaths > max_deaths:
                            raise PipelineError(
                                f"model workers died {tally.worker_deaths} times; last: {_describe(exc)}"
                            ) from exc
                    if not is_flush:
                        retry(batch, "worker", "the model worker died")
                    continue
                except ray.exceptions.RayError as exc:
                    if is_flush:  # a system failure while the worker wrote its last shard
                        message = f"a model worker could not write its last shard: {_describe(exc)}"
                        raise PipelineError(message) from exc
                    # the decode task's worker crashed (Ray already retried it), or a system failure
                    from_decode = "decode_batch" in str(getattr(exc, "function_name", ""))
                    retry(batch, "decode" if from_decode else "model", _describe(exc))
                    continue
                if is_flush:
                    take_shards(slot, result)
                    continue
                tally.nodes[result["node"]] += len(batch.items)
                per_batch = result["seconds"] * spec.items_per_call / len(batch.items)
                batch_seconds = per_batch if not batch_seconds else 0.7 * batch_seconds + 0.3 * per_batch
                # outcomes come back in the order of batch.items (ModelWorker.process keeps it)
                outcomes = [outcome for _, outcome in result["outcomes"]]
                for item, outcome in zip(batch.items, outcomes, strict=True):
                    if isinstance(outcome, Held):
                        held[slot][item.id] = item
                        measures[item.id] = outcome.measure
                committer.put((batch.items, outcomes))
                take_shards(slot, result)
        committer.close()
    finally:
        if committer.thread.is_alive():
            # an error in the driver: what already arrived is still committed, then the job stops
            with contextlib.suppress(BaseException):
                committer.close()
        bar.close()
