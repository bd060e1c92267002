"""Hierarchical k-means visual tokens: fitting, tree ids, dense ids for tiny nodes, codebook files."""

from __future__ import annotations

import numpy as np
import pytest

from vlprep.tokenizers.visual import Codebook, CodebookError, fit
from vlprep.tokenizers.visual.codebook import token_paths
from vlprep.tokenizers.visual.kmeans import greedy_kmeans_pp
from vlprep.tokenizers.visual.sampling import Reservoir, sample_rows


def two_level_mixture(groups=12, clusters=12, per=25, d=24, seed=0):
    """Points in `groups` far-apart groups of `clusters` nearer clusters each, with their true labels."""
    rng = np.random.default_rng(seed)
    top = rng.normal(size=(groups, d)) * 30
    sub = top[:, None, :] + rng.normal(size=(groups, clusters, d)) * 4
    x = sub[:, :, None, :] + rng.normal(size=(groups, clusters, per, d)) * 0.3
    leaf = np.repeat(np.arange(groups * clusters), per)
    x = x.reshape(-1, d).astype(np.float32)
    perm = rng.permutation(len(x))
    return x[perm], leaf[perm], leaf[perm] // clusters


def purity(pred: np.ndarray, truth: np.ndarray) -> float:
    return sum(np.bincount(truth[pred == p]).max() for p in np.unique(pred)) / len(truth)


@pytest.fixture(scope="module")
def mixture_fit():
    x, leaf, group = two_level_mixture()
    return x, leaf, group, fit(x, levels=2, branching=12, seed=3)


def test_two_level_mixture_is_recovered(mixture_fit):
    x, leaf, group, cb = mixture_fit
    ids = cb.assign(x)
    assert ids.dtype == np.int32 and ids.min() >= 0 and ids.max() < 144
    assert purity(ids, leaf) >= 0.99
    assert purity(ids // 12, group) >= 0.99
    # each true group is one level-1 node and each true cluster one leaf (a bijection, not only purity)
    assert len({int(np.bincount(ids[group == g] // 12).argmax()) for g in range(12)}) == 12
    assert len(np.unique(ids)) == 144
    assert cb.stats["tiny_nodes"] == [0, 0] and cb.stats["duplicated_nodes"] == [0, 0]
    assert cb.error[1] < cb.error[0] / 10


def test_ids_follow_the_tree(mixture_fit):
    x, _, _, cb = mixture_fit
    ids = cb.assign(x).astype(np.int64)
    paths = cb.paths(ids)
    np.testing.assert_array_equal(paths[:, 0], ids // 12)
    np.testing.assert_array_equal(paths[:, 0] * 12 + paths[:, 1], ids)
    # level 1: nearest of the 12 top centroids; level 2: nearest among that node's 12 children
    d1 = ((x[:, None, :] - cb.centroids[0][None]) ** 2).sum(-1)
    np.testing.assert_array_equal(d1.argmin(1), ids // 12)
    children = cb.centroids[1].reshape(12, 12, -1)[ids // 12]
    d2 = ((x[:, None, :] - children) ** 2).sum(-1)
    np.testing.assert_array_equal(d2.argmin(1), ids % 12)
    # the flat nearest leaf is not always the tree's leaf: the tree is what defines the id
    np.testing.assert_array_equal(token_paths(np.array([0, 13, 143]), 2, 12), [[0, 0], [1, 1], [11, 11]])


def test_gpu_descent_agrees_with_cpu_descent(mixture_fit):
    x, _, _, cb = mixture_fit
    cpu = cb.assign(x)
    # the gather path is what runs on CUDA; run it on CPU tensors here
    np.testing.assert_array_equal(cb._descend_gather(np.ascontiguousarray(x), "cpu"), cpu)
    np.testing.assert_array_equal(cb.assign(x, batch_size=17, threads=2), cpu)


def test_fit_is_deterministic_for_a_seed():
    x, _, _ = two_level_mixture(per=8, seed=1)
    a = fit(x, levels=2, branching=12, seed=7, threads=1)
    b = fit(x, levels=2, branching=12, seed=7, threads=2)
    for ca, cb_ in zip(a.centroids, b.centroids, strict=True):
        np.testing.assert_array_equal(ca, cb_)
    np.testing.assert_array_equal(a.assign(x), b.assign(x))
    assert a.error == b.error


def test_tiny_nodes_keep_ids_dense():
    rng = np.random.default_rng(0)
    big = rng.normal(size=(5, 8)) * 50
    x = np.concatenate([big[g] + rng.normal(size=(40, 8)) for g in range(5)])
    lonely = np.array([200.0] * 8) + rng.normal(size=(2, 8))  # a level-1 node with 2 points, branching 4
    x = np.concatenate([x, lonely]).astype(np.float32)
    cb = fit(x, levels=3, branching=4, seed=0)
    assert [len(c) for c in cb.centroids] == [4, 16, 64]
    ids = cb.assign(x)
    lonely_ids = ids[-2:]
    # the 2-point node got 4 children: 2 real, 2 copies; its 2 points get 2 distinct ids under it
    node = int(lonely_ids[0]) // 16
    assert (lonely_ids // 16 == node).all() and len(set(lonely_ids.tolist())) == 2
    assert cb.stats["tiny_nodes"][1] >= 1
    assert cb.stats["duplicated_nodes"][1] >= 2
    assert cb.valid[1][node * 4 : node * 4 + 4].sum() == 2
    # copies are never reached, whatever the query
    q = rng.normal(size=(2000, 8)).astype(np.float32) * 100
    qi = cb.assign(q).astype(np.int64)
    assert cb.valid[2][qi].all() and cb.valid[1][qi // 4].all()
    assert cb.counts[2].sum() == len(x)
    summary = cb.summary()
    assert summary["tiny_nodes"] == cb.stats["tiny_nodes"] and summary["leaves_used"] <= 64


def test_fewer_points_than_branching_at_the_root():
    x = np.arange(15, dtype=np.float32).reshape(5, 3)
    cb = fit(x, levels=2, branching=8, seed=0)
    ids = cb.assign(x)
    assert len(set(ids.tolist())) == 5 and cb.stats["tiny_nodes"][0] == 1
    assert cb.quantization_error(x) == pytest.approx(0.0, abs=1e-6)


def test_l2_normalisation_is_stored_and_applied(tmp_path):
    x, _, _ = two_level_mixture(per=5, seed=2)
    cb = fit(x, levels=2, branching=12, normalize="l2", seed=0)
    assert np.allclose(np.linalg.norm(cb.centroids[0], axis=1), 1, atol=0.2)
    np.testing.assert_array_equal(cb.assign(x * 7.5), cb.assign(x))
    loaded = Codebook.load(cb.save(tmp_path / "cb.h5"))
    assert loaded.normalize == "l2"
    np.testing.assert_array_equal(loaded.assign(x * 3), cb.assign(x))


def test_codebook_round_trip(tmp_path, mixture_fit):
    x, _, _, cb = mixture_fit
    path = cb.save(tmp_path / "sub" / "codebook.h5")
    loaded = Codebook.load(path)
    assert loaded.levels == 2 and loaded.branching == 12 and loaded.dim == x.shape[1]
    assert loaded.sample_size == len(x) and loaded.points_seen == len(x)
    assert loaded.error == cb.error and loaded.stats == cb.stats and loaded.params == cb.params
    for a, b in zip(
        loaded.centroids + loaded.valid + loaded.counts, cb.centroids + cb.valid + cb.counts, strict=True
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.assign(x), cb.assign(x))
    assert not (tmp_path / "sub" / "codebook.h5.tmp").exists()


def test_wrong_dimension_and_bad_files(tmp_path, mixture_fit):
    _, _, _, cb = mixture_fit
    with pytest.raises(CodebookError, match="dimension 7 but the codebook was fitted on 24-d"):
        cb.assign(np.zeros((3, 7), np.float32))
    with pytest.raises(CodebookError, match="no codebook"):
        Codebook.load(tmp_path / "missing.h5")
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(CodebookError, match="not a vlprep codebook"):
        Codebook.load(tmp_path / "other.h5")


def test_greedy_seeding_finds_every_separated_group():
    x, _, group = two_level_mixture(per=3, seed=4)
    for seed in range(10):
        seeds = greedy_kmeans_pp(x, 12, np.random.default_rng(seed))
        nearest_point = ((seeds[:, None, :] - x[None]) ** 2).sum(-1).argmin(1)
        assert len(set(group[nearest_point].tolist())) == 12


def test_reservoir_keeps_everything_when_it_fits_and_is_uniform_otherwise():
    rows = np.arange(300, dtype=np.float32)[:, None].repeat(2, 1)
    sample, seen = sample_rows([rows[:100], rows[100:250], [rows[250:]]], size=500)
    assert seen == 300
    np.testing.assert_array_equal(sample, rows)
    n, size = 20_000, 1_000
    blocks = np.split(
        np.arange(n, dtype=np.float32)[:, None], np.cumsum(np.random.default_rng(0).integers(1, 60, 700))
    )
    firsts = []
    for seed in range(5):
        res = Reservoir(size, seed)
        for b in blocks:
            res.add(b)
        got = res.sample[:, 0].astype(np.int64)
        assert len(got) == size and len(np.unique(got)) == size and res.seen == n
        firsts.append((got < n // 2).mean())
        # each quarter of the stream holds about a quarter of the sample
        quarters = np.bincount(got * 4 // n, minlength=4) / size
        assert np.all(np.abs(quarters - 0.25) < 0.06), quarters
    assert abs(np.mean(firsts) - 0.5) < 0.03
    with pytest.raises(ValueError, match="dimension 3 after rows of dimension 1"):
        res.add(np.zeros((2, 3)))


def test_non_finite_rows_are_left_out_of_the_fit():
    x, _, _ = two_level_mixture(per=4, seed=5)
    bad = x.copy()
    bad[[3, 10], 0] = np.nan
    bad[20, 5] = np.inf
    cb = fit(bad, levels=2, branching=12, seed=0)
    assert cb.params["dropped_nonfinite_rows"] == 3 and cb.sample_size == len(x) - 3
    assert all(np.isfinite(c).all() for c in cb.centroids)
