import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlprep.store.geometry import box_geometry, vlbert_position_embedding

BOX = np.array([[10.0, 20.0, 110.0, 70.0]], dtype=np.float32)  # w=100, h=50 in a 400x200 (W x H) image


def test_known_values_for_each_dims():
    np.testing.assert_allclose(box_geometry(BOX, 200, 400, 4), [[0.025, 0.1, 0.275, 0.35]], rtol=1e-6)
    np.testing.assert_allclose(
        box_geometry(BOX, 200, 400, 5), [[0.025, 0.1, 0.275, 0.35, 5000 / 80000]], rtol=1e-6
    )
    np.testing.assert_allclose(
        box_geometry(BOX, 200, 400, 6), [[0.025, 0.1, 0.275, 0.35, 0.25, 0.25]], rtol=1e-6
    )
    np.testing.assert_allclose(
        box_geometry(BOX, 200, 400, 7), [[0.025, 0.1, 0.275, 0.35, 0.25, 0.25, 0.0625]], rtol=1e-6
    )


def test_vlbert_embedding_layout():
    emb = box_geometry(BOX, 200, 400, "vlbert")
    assert emb.shape == (1, 2048)
    # first block: x_c/W*100 = 15; frequency 0 is 1000**0 = 1
    assert emb[0, 0] == pytest.approx(np.sin(15.0), abs=1e-6)
    assert emb[0, 256] == pytest.approx(np.cos(15.0), abs=1e-6)
    # second block: y_c/H*100 = 22.5; last frequency 1000**(255/256)
    assert emb[0, 512 + 255] == pytest.approx(np.sin(22.5 / 1000 ** (255 / 256)), abs=1e-6)
    # fourth block: h/H*100 = 25
    assert emb[0, 3 * 512 + 256 + 1] == pytest.approx(np.cos(25 / 1000 ** (1 / 256)), abs=1e-6)
    assert vlbert_position_embedding(np.zeros((0, 4)), 10, 10).shape == (0, 2048)


def test_unknown_dims_rejected():
    with pytest.raises(ValueError, match="geometry"):
        box_geometry(BOX, 200, 400, 8)


@given(
    st.lists(
        st.tuples(st.floats(0, 500), st.floats(0, 500), st.floats(0.5, 300), st.floats(0.5, 300)),
        min_size=1,
        max_size=8,
    ),
    st.integers(50, 2000),
    st.integers(50, 2000),
)
def test_dims_are_consistent_extensions(raw, H, W):
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in raw], dtype=np.float64)
    g4, g5, g6, g7 = (box_geometry(boxes, H, W, d).astype(np.float64) for d in (4, 5, 6, 7))
    np.testing.assert_allclose(g5[:, :4], g4, rtol=1e-6)
    np.testing.assert_allclose(g7[:, :6], g6, rtol=1e-6)
    np.testing.assert_allclose(g6[:, 4], g4[:, 2] - g4[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g7[:, 6], g6[:, 4] * g6[:, 5], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(g5[:, 4], g7[:, 6], rtol=1e-5, atol=1e-9)
