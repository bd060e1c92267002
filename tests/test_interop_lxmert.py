"""LXMERT TSV and npz-dir interop: exact round trips and the field layouts other projects read."""

from __future__ import annotations

import base64
import csv
import sys

import numpy as np
from click.testing import CliRunner

from vlprep.cli import cli
from vlprep.interop import lxmert_tsv
from vlprep.interop.npz_dir import file_name, read_npz
from vlprep.store import FeatureStore

LXMERT_FIELDS = [
    "img_id", "img_h", "img_w", "objects_id", "objects_conf", "attrs_id", "attrs_conf", "num_boxes", "boxes",
    "features",
]  # fmt: skip


def _b64(array, dtype):
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode()


def _lxmert_file(path, rows):
    """A TSV written the way LXMERT's extraction script writes it (csv.DictWriter, tab, no header)."""
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, delimiter="\t", fieldnames=LXMERT_FIELDS)
        for row in rows:
            writer.writerow(row)


def _rows(rng, dims=16):
    rows = []
    for n, (img_id, boxes) in enumerate(
        [("COCO_val2014_000000000042", 5), ("img/with slash", 3), ("zero", 0)]
    ):
        h, w = 100 + n, 200 - n
        xy = rng.uniform(0, 90, size=(boxes, 2)).astype(np.float32)
        rows.append({
            "img_id": img_id, "img_h": h, "img_w": w,
            "objects_id": _b64(rng.integers(0, 1600, boxes), np.int64),
            "objects_conf": _b64(rng.random(boxes), np.float32),
            "attrs_id": _b64(rng.integers(0, 400, boxes), np.int64),
            "attrs_conf": _b64(rng.random(boxes), np.float32),
            "num_boxes": boxes,
            "boxes": _b64(np.concatenate([xy, xy + 5.5], axis=1), np.float32),
            "features": _b64(rng.standard_normal((boxes, dims)) * 1e3, np.float32),
        })  # fmt: skip
    return rows


def _load_obj_tsv(path):
    """LXMERT's reader (src/utils.py load_obj_tsv), re-stated to check our files against it."""
    csv.field_size_limit(sys.maxsize)
    data = []
    with open(path) as f:
        for item in csv.DictReader(f, LXMERT_FIELDS, delimiter="\t"):
            for key in ["img_h", "img_w", "num_boxes"]:
                item[key] = int(item[key])
            n = item["num_boxes"]
            for key, shape, dtype in [
                ("objects_id", (n,), np.int64),
                ("objects_conf", (n,), np.float32),
                ("attrs_id", (n,), np.int64),
                ("attrs_conf", (n,), np.float32),
                ("boxes", (n, 4), np.float32),
                ("features", (n, 16), np.float32),
            ]:
                item[key] = np.frombuffer(base64.b64decode(item[key]), dtype=dtype).reshape(shape)
            data.append(item)
    return data


def test_tsv_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "in.tsv"
    _lxmert_file(src, _rows(rng))
    runner = CliRunner()
    result = runner.invoke(cli, ["convert", "lxmert-tsv", str(src), "--out", str(tmp_path / "s"), "--json"])
    assert result.exit_code == 0, result.output
    store = FeatureStore(tmp_path / "s")
    assert store.kind == "regions" and len(store) == 3
    rec = store["COCO_val2014_000000000042"]
    assert rec["features"].shape == (5, 16) and rec["boxes"].shape == (5, 4)
    assert int(rec["image_h"]) == 100 and int(rec["num_boxes"]) == 5
    assert store["zero"]["features"].shape[0] == 0

    out = tmp_path / "out.tsv"
    result = runner.invoke(cli, ["export", str(tmp_path / "s"), "--format", "lxmert-tsv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    # byte-exact, modulo line order (the store keeps storage order, equal to file order here)
    assert out.read_bytes() == src.read_bytes()
    ours, theirs = _load_obj_tsv(out), _load_obj_tsv(src)
    assert [r["img_id"] for r in ours] == [r["img_id"] for r in theirs]
    for a, b in zip(ours, theirs, strict=True):
        for key in LXMERT_FIELDS[1:]:
            assert np.array_equal(a[key], b[key]), key

    # converting again resumes: nothing added
    result = runner.invoke(cli, ["convert", "lxmert-tsv", str(src), "--out", str(tmp_path / "s"), "--json"])
    assert result.exit_code == 0 and '"added": 0' in result.output


def test_tsv_rejects_malformed_rows(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\t1\t2\n")
    result = CliRunner().invoke(cli, ["convert", "lxmert-tsv", str(bad), "--out", str(tmp_path / "s")])
    assert result.exit_code == 1 and "fields" in result.output
    row = [str(v) for v in _rows(np.random.default_rng(1))[0].values()]
    row[7] = "4"  # num_boxes disagrees with the arrays
    try:
        lxmert_tsv.parse_row(row)
    except lxmert_tsv.TsvFormatError as exc:
        assert "num_boxes" in str(exc)
    else:
        raise AssertionError("a row whose arrays disagree with num_boxes was accepted")


def test_npz_dir_export(tmp_path):
    rng = np.random.default_rng(2)
    src = tmp_path / "in.tsv"
    _lxmert_file(src, _rows(rng))
    runner = CliRunner()
    assert (
        runner.invoke(cli, ["convert", "lxmert-tsv", str(src), "--out", str(tmp_path / "s")]).exit_code == 0
    )
    out = tmp_path / "npz"
    result = runner.invoke(
        cli, ["export", str(tmp_path / "s"), "--format", "npz-dir", "--out", str(out), "--geometry", "7"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "img" / "with slash.npz").is_file() and file_name("../x") == "..%2Fx.npz"
    data = read_npz(out / "COCO_val2014_000000000042.npz")
    assert set(data) == {
        "x", "bbox", "num_bbox", "image_h", "image_w", "objects_id", "objects_conf", "attrs_id", "attrs_conf",
        "geometry",
    }  # fmt: skip
    rec = FeatureStore(tmp_path / "s")["COCO_val2014_000000000042"]
    assert np.array_equal(data["x"], rec["features"]) and np.array_equal(data["bbox"], rec["boxes"])
    assert int(data["num_bbox"]) == 5 and int(data["image_h"]) == 100 and int(data["image_w"]) == 200
    assert data["geometry"].shape == (5, 7)
    assert np.allclose(data["geometry"][:, 0], rec["boxes"][:, 0] / 200)
    bad = runner.invoke(
        cli, ["export", str(tmp_path / "s"), "--format", "lxmert-tsv", "--out", "x", "--geometry", "4"]
    )
    assert bad.exit_code == 2
