"""The regions job's own logic without a model: --given-boxes files, routing of given boxes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vlprep.pipelines.inputs import Item
from vlprep.pipelines.regions import _Model, describe, load_given_boxes, run_batch
from vlprep.pipelines.runner import Failure


def test_given_boxes_files(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps({"a": [[0, 0, 5, 5], [1, 1, 4, 4]], "b": [[2, 2, 3, 3]]}))
    (tmp_path / "l.json").write_text(json.dumps([{"id": "a", "boxes": [[0, 0, 5, 5]]}]))
    (tmp_path / "b.csv").write_text("id,x1,y1,x2,y2\na,0,0,5,5\na,1,1,4,4\nb,2,2,3,3\n")
    from_json, from_csv = load_given_boxes(tmp_path / "b.json"), load_given_boxes(tmp_path / "b.csv")
    assert from_json.keys() == from_csv.keys() == {"a", "b"}
    assert np.array_equal(from_json["a"], from_csv["a"]) and from_json["a"].dtype == np.float32
    assert load_given_boxes(tmp_path / "l.json")["a"].shape == (1, 4)
    (tmp_path / "bad.json").write_text(json.dumps({"a": []}))
    with pytest.raises(ValueError, match="no valid boxes"):
        load_given_boxes(tmp_path / "bad.json")


class _FakeExtractor:
    producer = {"model": "fake"}
    object_names = None
    attribute_names = None

    def __init__(self):
        self.calls = []

    def extract(self, images, given_boxes=None):
        self.calls.append((len(images), given_boxes))
        boxes = given_boxes or [np.zeros((1, 4), np.float32)] * len(images)
        return [
            {"features": np.full((len(b), 2), float(img.sum())), "boxes": b} for img, b in zip(images, boxes)
        ]


def test_given_boxes_are_routed_by_id():
    given = {"a": np.ones((2, 4), np.float32), "c": np.zeros((3, 4), np.float32)}
    model = _Model(_FakeExtractor(), given, "abc")
    batch = [(Item(i, i), np.full((2, 2, 3), n, np.uint8)) for n, i in enumerate(["a", "b", "c"])]
    out = run_batch(model, batch)
    assert out[1] == Failure("input", "no given boxes for this id")
    assert out[0]["boxes"].shape == (2, 4) and out[2]["boxes"].shape == (3, 4)
    assert out[2]["features"][0, 0] == 2 * 12
    assert model.extractor.calls == [(2, [given["a"], given["c"]])]
    assert describe(model) == {"model": "fake", "given_boxes_sha256": "abc"}
