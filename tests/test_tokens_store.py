"""`vlprep tokens fit|assign` on real stores: token stores, resume, in-place, Ray, wrong dimensions,
rendering."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from vlprep.cli import cli
from vlprep.pipelines.tokens import assign_store, store_rows
from vlprep.store import FeatureStore, StoreMismatchError, StoreWriter
from vlprep.tokenizers.visual import Codebook, CodebookError, fit

D = 16


def write_video_store(path, n_items=30, d=D, seed=0, shard_size=8):
    """A video-kind store: clip features drawn around 20 centres, with timestamps, some items empty."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, d)) * 10
    expected = {}
    with StoreWriter(path, kind="video", shard_size=shard_size) as w:
        for i in range(n_items):
            t = 0 if i == 3 else int(rng.integers(1, 12))
            f = (centres[rng.integers(0, 20, t)] + rng.normal(size=(t, d))).astype(np.float32)
            ts = np.stack([np.arange(t) * 1.5, np.arange(t) * 1.5 + 1.5], 1)
            item_id = f"videos/clip {i:03d}.mp4"
            w.add(item_id, {"features": f, "timestamps": ts, "fps": 20.0})
            expected[item_id] = (f, ts)
    return expected


@pytest.fixture()
def video_store(tmp_path):
    path = tmp_path / "video"
    return path, write_video_store(path)


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


def test_cli_fit_and_assign(tmp_path, video_store):
    src, expected = video_store
    cb_path = tmp_path / "cb.h5"
    r = run("tokens", "fit", src, "--levels", 2, "--branching", 4, "--seed", 1, "--out", cb_path, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    total_rows = sum(len(f) for f, _ in expected.values())
    assert summary["sample_size"] == summary["points_seen"] == total_rows
    assert summary["vocab_size"] == 16 and len(summary["error"]) == 2
    cb = Codebook.load(cb_path)
    assert cb.params["sources"] == [str(src)]

    out = tmp_path / "tokens"
    r = run("tokens", "assign", src, "--codebook", cb_path, "--out", out)
    assert r.exit_code == 0, r.output
    assert "tokens assign: 30 ok, 0 failed, 0 skipped" in r.output
    store = FeatureStore(out)
    assert store.kind == "tokens" and sorted(store.ids()) == sorted(expected)
    assert set(store.fields) == {"tokens", "timestamps"}
    assert store.producer["levels"] == 2 and "codebook_sha256" in store.producer
    for item_id, (f, ts) in expected.items():
        rec = store[item_id]
        assert rec["tokens"].dtype == np.int32 and rec["tokens"].shape == (len(f),)
        if len(f):
            np.testing.assert_array_equal(rec["tokens"], cb.assign(f))
        np.testing.assert_array_equal(rec["timestamps"], ts)

    # human summary line of fit
    r = run("tokens", "fit", src, "--levels", 1, "--branching", 3, "--out", tmp_path / "cb1.h5")
    assert r.exit_code == 0 and "leaves used" in r.output and "error per level" in r.output


def test_assign_resumes_after_interruption(tmp_path, video_store):
    src, expected = video_store
    x = np.concatenate([f for f, _ in expected.values()])
    cb_path = fit(x, levels=2, branching=4, seed=0).save(tmp_path / "cb.h5")
    out = tmp_path / "tokens"

    class Stop(Exception):
        pass

    done = []

    def interrupt(n):
        done.append(n)
        if sum(done) >= 12:
            raise Stop

    with pytest.raises(Stop):
        assign_store(src, cb_path, out, chunk_items=4, shard_size=5, progress=interrupt)
    committed = len(FeatureStore(out))
    assert 0 < committed < 30
    summary = assign_store(src, cb_path, out, chunk_items=4, shard_size=5)
    assert summary["skipped"] == committed and summary["ok"] == 30 - committed
    fresh = tmp_path / "fresh"
    assign_store(src, cb_path, fresh)
    a, b = FeatureStore(out), FeatureStore(fresh)
    assert sorted(a.ids()) == sorted(b.ids())
    for item_id in b.ids():
        np.testing.assert_array_equal(a[item_id]["tokens"], b[item_id]["tokens"])
    # a third run has nothing left to do; another codebook on the same output is refused
    assert assign_store(src, cb_path, out)["ok"] == 0
    other = fit(x, levels=2, branching=4, seed=5).save(tmp_path / "other.h5")
    with pytest.raises(StoreMismatchError):
        assign_store(src, other, out)


def test_wrong_dimension_store_is_a_clear_error(tmp_path, video_store):
    src, _ = video_store
    cb_path = fit(np.random.default_rng(0).normal(size=(200, 8)), levels=1, branching=4).save(
        tmp_path / "cb8.h5"
    )
    out = tmp_path / "tokens"
    with pytest.raises(CodebookError, match=r"dimension 16 but the codebook was fitted on 8-d"):
        assign_store(src, cb_path, out)
    assert not out.exists()
    r = run("tokens", "assign", src, "--codebook", cb_path, "--out", out)
    assert r.exit_code == 2 and "fitted on 8-d" in r.output  # the wrong codebook: a usage error
    r = run("tokens", "assign", src, "--codebook", cb_path)
    assert r.exit_code == 2 and "exactly one of" in r.output


def test_assign_in_place_adds_a_field(tmp_path, video_store):
    src, expected = video_store
    x = np.concatenate([f for f, _ in expected.values()])
    cb = fit(x, levels=2, branching=3, seed=0)
    cb_path = cb.save(tmp_path / "cb.h5")
    r = run("tokens", "assign", src, "--codebook", cb_path, "--in-place", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["ok"] == 30
    store = FeatureStore(src)
    assert "tokens" in store.fields and "features" in store.fields
    for item_id, (f, _) in expected.items():
        rec = store[item_id]
        np.testing.assert_array_equal(rec["features"], f)
        if len(f):
            np.testing.assert_array_equal(rec["tokens"], cb.assign(f))


def test_assign_with_ray_workers_matches_in_process(tmp_path, video_store, ray_local):
    src, expected = video_store
    x = np.concatenate([f for f, _ in expected.values()])
    cb_path = fit(x, levels=2, branching=4, seed=0).save(tmp_path / "cb.h5")
    local = assign_store(src, cb_path, tmp_path / "local")
    remote = assign_store(src, cb_path, tmp_path / "ray", workers=2, chunk_items=7)
    assert remote["ok"] == local["ok"] == 30
    a, b = FeatureStore(tmp_path / "local"), FeatureStore(tmp_path / "ray")
    # the runner commits in completion order, as for regions and video: compare as sets
    assert sorted(a.ids()) == sorted(b.ids())
    assert "path" not in b.fields
    for item_id in a.ids():
        np.testing.assert_array_equal(a[item_id]["tokens"], b[item_id]["tokens"])


def test_fit_streams_several_stores_and_bounds_the_sample(tmp_path):
    a = write_video_store(tmp_path / "a", n_items=20, seed=1)
    b = write_video_store(tmp_path / "b", n_items=20, seed=2)
    rows = sum(len(f) for f, _ in list(a.values()) + list(b.values()))
    cb = fit(store_rows([tmp_path / "a", str(tmp_path / "b")]), levels=1, branching=5, sample=50)
    assert cb.sample_size == 50 and cb.points_seen == rows
    with pytest.raises(CodebookError, match="no field"):
        fit(store_rows(tmp_path / "a", field="nope"), levels=1, branching=2)
    with pytest.raises(TypeError, match="store_rows"):
        fit(str(tmp_path / "a"), levels=1, branching=2)


def test_render_token_histogram(tmp_path, video_store):
    from vlprep.render.tokens import render_tokens, token_counts

    src, expected = video_store
    x = np.concatenate([f for f, _ in expected.values()])
    cb_path = fit(x, levels=2, branching=4, seed=0).save(tmp_path / "cb.h5")
    assign_store(src, cb_path, tmp_path / "tokens")
    store = FeatureStore(tmp_path / "tokens")
    counts, items = token_counts(store)
    assert counts.sum() == len(x) and items == 30
    png = render_tokens(tmp_path / "tokens", tmp_path / "hist.png")
    image = Image.open(png)
    assert image.size == (1200, 720)
    pixels = np.asarray(image.convert("RGB"))
    # bars are drawn (blue) and the 16-token vocabulary is fully covered, so no unused-id (red) columns
    assert ((pixels == (52, 101, 164)).all(-1)).sum() > 1000
    assert ((pixels == (240, 200, 200)).all(-1)).sum() == 0


def test_render_shows_a_collapsed_codebook(tmp_path):
    from vlprep.render.tokens import render_tokens, usage_stats

    with StoreWriter(tmp_path / "collapsed", kind="tokens", producer={"levels": 2, "branching": 12}) as w:
        for i in range(10):
            w.add(f"v{i}", {"tokens": np.array([3, 3, 3, 7, 3], np.int32)})
    png = render_tokens(FeatureStore(tmp_path / "collapsed"), tmp_path / "c.png")
    pixels = np.asarray(Image.open(png).convert("RGB"))
    # 142 of 144 ids unused: most of the id panel's columns are red
    assert ((pixels == (240, 200, 200)).all(-1)).any(0).sum() > 900
    stats = usage_stats(np.bincount([3] * 40 + [7] * 10), 144)
    assert stats["distinct"] == 2 and stats["top_share"] == 0.8 and stats["vocab_size"] == 144


def test_items_with_bad_features_are_recorded_as_errors(tmp_path):
    rng = np.random.default_rng(0)
    with StoreWriter(tmp_path / "src", kind="video", shard_size=4) as w:
        for i in range(6):
            f = rng.normal(size=(3, 4)).astype(np.float32)
            if i == 2:
                f[1, 1] = np.nan
            w.add(f"v{i}", {"features": f})
    cb_path = fit(rng.normal(size=(100, 4)), levels=1, branching=3).save(tmp_path / "cb.h5")
    summary = assign_store(tmp_path / "src", cb_path, tmp_path / "out", chunk_items=4)
    assert summary["ok"] == 5 and summary["failed"] == 1
    out = FeatureStore(tmp_path / "out")
    assert "v2" not in out and len(out) == 5
    assert [e["id"] for e in out.errors()] == ["v2"] and "NaN" in out.errors()[0]["message"]
    src = FeatureStore(tmp_path / "src")
    cb = Codebook.load(cb_path)
    for item_id in out.ids():
        np.testing.assert_array_equal(out[item_id]["tokens"], cb.assign(src[item_id]["features"]))
