"""A writer killed while creating a store leaves it creatable. (Every other crash point is covered,
deterministically, by test_store_faults.py.)"""

import numpy as np

from vlprep.store import FeatureStore


def test_writer_killed_while_creating_the_store_leaves_it_creatable(tmp_path):
    from vlprep.store import StoreWriter

    path = tmp_path / "s"
    (path / "shards").mkdir(parents=True)
    (path / ".writer.lock").touch()
    (path / "store.json.tmp").write_text("{")
    with StoreWriter(path, kind="test") as w:
        w.add("a", {"x": np.zeros(2)})
    assert FeatureStore(path).ids() == ["a"]
