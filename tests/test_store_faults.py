"""Every crash point, not random ones: the process is stopped (os._exit in a forked child) or the disk
fills (OSError ENOSPC) at each named step of a shard commit and of add_field — every file write, fsync,
rename, SQL statement and store.json save — and then the same job is run again. For every step the store
equals an uninterrupted run's, verify passes, and no committed file is lost."""

import errno
import os
import shutil

import numpy as np
import pytest
from store_helpers import CRASHED, crash_at, trace_steps

from vlprep.store import FeatureStore, StoreError, StoreWriter, add_field, faults, verify

IDS = ["a", "b/c", "bad", "d", "e"]


def _record(item_id: str) -> dict:
    n = len(item_id)
    return {"features": np.full((n, 2), float(n), np.float32), "num": n}


def _tokens(item_id, record):
    return np.arange(len(record["features"]), dtype=np.int32)


def _job(path) -> None:
    """A small resumable job: write the items (one fails), then add a field in place."""
    with StoreWriter(path, kind="toy", shard_size=2, producer={"model": "toy"}) as w:
        for item_id in w.pending(IDS):
            if item_id == "bad":
                w.error(item_id, "/data/bad", "decode", "broken")
            else:
                w.add(item_id, _record(item_id))
    if "tokens" not in FeatureStore(path).schema:
        add_field(path, "tokens", _tokens)


def _contents(path):
    store = FeatureStore(path)
    records = {i: {k: np.asarray(v).tobytes() for k, v in r.items()} for i, r in store}
    errors = [(e["id"], e["stage"], e["message"]) for e in store.errors()]
    report = verify(store)
    out = (store.ids(), records, errors, {n: f.describe() for n, f in store.schema.items()})
    store.close()
    assert report.ok, report.faults
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "store"
    steps = trace_steps(lambda: _job(path))
    return _contents(path), steps


def test_the_job_goes_through_every_kind_of_step(reference):
    _, steps = reference
    for name in (
        "shard_write",
        "fsync_file",
        "rename",
        "fsync_dir",
        "sql_begin",
        "sql_insert_items",
        "sql_commit",
        "json_write",
        "sql_switch_generation",
        "sql_record_error",
    ):
        assert name in steps, name


def test_killed_at_every_step_then_rerun_equals_an_uninterrupted_run(reference, tmp_path):
    expected, steps = reference
    for k, name in enumerate(steps):
        path = tmp_path / f"k{k}"
        assert crash_at(k, lambda p=path: _job(p)) == CRASHED, (k, name)
        _job(path)  # the rerun
        assert _contents(path) == expected, f"after a kill at step {k} ({name})"


# the steps that write bytes (a rename or an fsync of a directory does not allocate blocks)
WRITES = {
    "shard_write",
    "shard_flush",
    "fsync_file",
    "json_write",
    "json_fsync",
    "sql_insert_shard",
    "sql_insert_items",
    "sql_record_error",
    "sql_commit",
    "sql_switch_generation",
}


def test_disk_full_at_every_write_is_one_clear_error_and_resumable(reference, tmp_path):
    expected, steps = reference
    for k, name in enumerate(steps):
        if name not in WRITES:
            continue
        path = tmp_path / f"k{k}"
        count = 0

        def hook(step, k=k):
            nonlocal count
            count += 1
            if count - 1 == k:
                raise OSError(errno.ENOSPC, "No space left on device")

        count = 0
        faults.hook = hook
        try:
            with pytest.raises(StoreError) as caught:
                _job(path)
        finally:
            faults.hook = None
        message = str(caught.value)
        assert "ENOSPC" in message and "\n" not in message and "rollback" not in message, (k, name, message)
        _job(path)  # space freed: the same job resumes
        assert _contents(path) == expected, f"after ENOSPC at step {k} ({name})"


DISK_FILLER = """
import sys
import numpy as np
from vlprep.store import StoreError, StoreWriter

ids = [f"i{k}" for k in range(40)]
try:
    with StoreWriter(sys.argv[1], kind="t", shard_size=3) as w:
        for i in w.pending(ids):
            w.add(i, {"features": np.full((32, 1024), float(i[1:]), np.float32)})
            w.error("e" + i, "src", "stage", "m" * 2000)
except StoreError as exc:
    print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)
"""


def test_a_real_full_disk_is_one_error_and_resumable(tmp_path):
    """A 6 MiB tmpfs filled to several levels, so that the shard write, the fsync and the SQLite
    transaction each meet the full disk; needs a machine where this process may mount a tmpfs."""
    import subprocess
    import sys

    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)]
    if subprocess.run(mount, capture_output=True).returncode:
        pytest.skip("this machine does not let the test mount a tmpfs (the injected ENOSPC tests still run)")
    try:
        for spare_kib in (40, 700, 1500):  # the shard write, then the index, meet the full disk
            store = mnt / f"s{spare_kib}"
            free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
            (mnt / "filler").write_bytes(b"\0" * max(0, free - (spare_kib + 4000) * 1024))
            cmd = [sys.executable, "-c", DISK_FILLER, str(store)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            assert proc.returncode == 1, proc.stderr[-2000:]  # not a SIGSEGV (-11), not a traceback
            assert proc.stderr.startswith("StoreIOError") and "ENOSPC" in proc.stderr
            assert proc.stderr.count("\n") == 1 and "rollback" not in proc.stderr
            (mnt / "filler").unlink()
            subprocess.run(cmd, check=True)
            done = FeatureStore(store)
            assert len(done) == 40 and len(done.errors()) == 40 and verify(done).ok
            assert float(done["i17"]["features"][0, 0]) == 17.0
            done.close()
            shutil.rmtree(store)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
