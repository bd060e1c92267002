import json
import os
import subprocess
import sys

import numpy as np
import pytest
from store_helpers import region_record

from vlprep.store import FeatureStore, StoreWriter, verify

VLPREP = [sys.executable, "-m", "vlprep.cli"]


@pytest.fixture
def store_path(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "s"
    with StoreWriter(path, kind="regions", shard_size=4, producer={"model": "test"}) as w:
        for i in range(10):
            w.add(f"img/{i}.jpg", region_record(rng, dim=64))
        w.error("img/bad.jpg", "/data/bad.jpg", "decode", "cannot identify image file")
    return path


def _run(*args):
    return subprocess.run([*VLPREP, *map(str, args)], capture_output=True, text=True)


def test_clean_store_verifies(store_path):
    report = verify(FeatureStore(store_path))
    assert report.ok and report.items == 10 and report.shards == 3
    proc = _run("inspect", store_path, "--verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout


def test_flipped_byte_is_caught(store_path):
    shard = store_path / "shards" / "00001.h5"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x40
    shard.write_bytes(bytes(data))
    proc = _run("inspect", store_path, "--verify", "--json")
    assert proc.returncode == 1
    faults = json.loads(proc.stdout)["faults"]
    assert any("00001.h5" in f and "sha256" in f for f in faults)


def test_deleted_shard_is_caught(store_path):
    os.unlink(store_path / "shards" / "00002.h5")
    proc = _run("inspect", store_path, "--verify")
    assert proc.returncode == 1
    assert "FAULT" in proc.stdout and "00002.h5" in proc.stdout and "missing" in proc.stdout


def test_nan_in_features_is_caught(tmp_path):
    rng = np.random.default_rng(1)
    rec = region_record(rng, n=3)
    rec["features"][1, 2] = np.nan
    with StoreWriter(tmp_path / "s", kind="regions") as w:
        w.add("a", rec)
    report = verify(FeatureStore(tmp_path / "s"))
    assert any("NaN" in f for f in report.faults)


def test_duplicate_ids_across_shards_are_caught(store_path):
    # Make shard 1 a copy of shard 0 and repair its checksum, as a careless manual merge might.
    import sqlite3

    from vlprep.checksums import file_sha256

    shards = store_path / "shards"
    (shards / "00001.h5").write_bytes((shards / "00000.h5").read_bytes())
    conn = sqlite3.connect(store_path / "index.sqlite")
    conn.execute(
        "UPDATE shards SET sha256 = ?, bytes = ? WHERE shard = 1",
        (file_sha256(shards / "00001.h5"), (shards / "00001.h5").stat().st_size),
    )
    conn.commit()
    conn.close()
    report = verify(FeatureStore(store_path))
    assert any("appears 2 times" in f for f in report.faults)
    assert any("row" in f and "disagrees" in f for f in report.faults)


def test_inspect_summary_item_and_errors(store_path):
    proc = _run("inspect", store_path, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["kind"] == "regions" and summary["items"] == 10 and summary["errors"] == 1
    assert summary["shards"] == 3 and summary["bytes"] > 0
    assert summary["fields"]["features"] == {"dtype": "float32", "shape": [None, 64]}
    assert summary["producer"] == {"model": "test"}
    text = _run("inspect", store_path).stdout
    assert "features" in text and "float32[n,64]" in text and "items     10" in text

    # --id --json: the same per-field summary as the text form; --values adds the arrays
    expected = FeatureStore(store_path)["img/3.jpg"]["features"]
    item = json.loads(_run("inspect", store_path, "--id", "img/3.jpg", "--json").stdout)
    assert item["fields"]["features"]["dtype"] == "float32"
    assert item["fields"]["features"]["shape"] == list(expected.shape)
    assert np.isclose(item["fields"]["features"]["max"], expected.max())
    assert "values" not in item
    text = _run("inspect", store_path, "--id", "img/3.jpg").stdout
    assert f"float32{list(expected.shape)}" in text and f"max {expected.max():.4g}" in text
    item = json.loads(_run("inspect", store_path, "--id", "img/3.jpg", "--json", "--values").stdout)
    np.testing.assert_allclose(item["values"]["features"], expected)
    errors = json.loads(_run("inspect", store_path, "--errors", "--json").stdout)
    assert errors[0]["id"] == "img/bad.jpg" and errors[0]["stage"] == "decode"

    missing = _run("inspect", store_path, "--id", "nope")
    assert missing.returncode == 2 and "nope" in missing.stderr and "Traceback" not in missing.stderr


def test_inspect_not_a_store_is_usage_error(tmp_path):
    proc = _run("inspect", tmp_path)
    assert proc.returncode == 2 and "not a vlprep store" in proc.stderr
