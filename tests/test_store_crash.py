"""A writer killed with SIGKILL at random moments loses at most its uncommitted shard."""

import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

from vlprep.store import FeatureStore, verify

N_ITEMS = 240

WRITER = textwrap.dedent(
    f"""
    import sys, time
    import numpy as np
    from vlprep.store import StoreWriter

    def record(i):
        rng = np.random.default_rng(i)
        n = int(rng.integers(1, 6))
        return {{"features": rng.standard_normal((n, 32)).astype(np.float32), "num": i}}

    ids = [f"item/{{i:04d}}" for i in range({N_ITEMS})]
    with StoreWriter(sys.argv[1], kind="test", shard_size=7) as w:
        for item_id in w.pending(ids):
            w.add(item_id, record(int(item_id[5:])))
            time.sleep(0.01)
    """
)


def test_sigkill_at_random_moments_then_resume(tmp_path):
    store_path = tmp_path / "store"
    rng = random.Random(1234)
    kills = 0
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(store_path)])
        time.sleep(rng.uniform(0.2, 1.5))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    assert kills >= 2, "the writer finished before it could be killed twice; slow it down"
    subprocess.run([sys.executable, "-c", WRITER, str(store_path)], check=True)

    store = FeatureStore(store_path)
    expected = [f"item/{i:04d}" for i in range(N_ITEMS)]
    assert sorted(store.ids()) == expected
    assert len(store.ids()) == len(set(store.ids()))
    for item_id in expected[::17]:
        i = int(item_id[5:])
        r = np.random.default_rng(i)
        n = int(r.integers(1, 6))
        np.testing.assert_array_equal(
            store[item_id]["features"], r.standard_normal((n, 32)).astype(np.float32)
        )
        assert store[item_id]["num"] == i
    assert not list((store_path / "shards").glob("*.tmp"))
    report = verify(store)
    assert report.ok, report.faults
    assert report.notes == []


def test_writer_killed_while_creating_the_store_leaves_it_creatable(tmp_path):
    from vlprep.store import StoreWriter

    path = tmp_path / "s"
    (path / "shards").mkdir(parents=True)
    (path / ".writer.lock").touch()
    (path / "store.json.tmp").write_text("{")
    with StoreWriter(path, kind="test") as w:
        w.add("a", {"x": np.zeros(2)})
    assert FeatureStore(path).ids() == ["a"]
