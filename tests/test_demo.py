"""`vlprep demo` end to end on a small corpus: every stage runs, the broken inputs are recorded."""

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from vlprep.store import FeatureStore


def test_demo_runs_every_stage(tmp_path):
    # one image: any count >= 1 works (the broken-image copy once assumed a third image)
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "vlprep", "demo", str(out), "--images", "1", "--videos", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    # Ray's notice that the local cluster uses token authentication (its default) is not repeated to
    # the user on every run; Ray's own INFO lines stay
    assert "Token authentication is enabled" not in proc.stderr, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    stages = {s["name"]: s for s in report["stages"]}
    assert set(stages) == {
        "corpus",
        "manifest",
        "regions",
        "video",
        "tokens",
        "wordpiece",
        "bpe",
        "inspect+export",
    }
    assert stages["manifest"]["items"] == 3 and stages["manifest"]["errors"] == 0
    assert stages["regions"]["items"] == 1 and stages["regions"]["errors"] == 2
    assert stages["video"]["items"] == 1 and stages["video"]["errors"] == 1
    assert report["verified"] == {"regions": True, "video": True, "video-tokens": True}
    assert sorted(e["id"] for e in report["deliberate_errors"]) == [
        "COCO_val2014_000000999998",
        "COCO_val2014_000000999999",
        "broken.mp4",
    ]
    regions = FeatureStore(out / "regions")
    assert all(regions[i]["num_boxes"] == 36 for i in regions.ids())
    assert "tokens" in FeatureStore(out / "video-tokens").schema
    for png in ("regions.png", "regions-overview.png", "video.png", "tokens.png", "video-tokens.png"):
        assert Image.open(out / png).size[0] >= 400  # readable, not the 261-px original
    assert len((out / "regions.tsv").read_text().splitlines()) == 1
    # the report names every output, and every one exists
    outputs = report["outputs"]
    assert {"codebook", "LXMERT TSV", "WordPiece vocabulary", "BPE vocabulary"} <= set(outputs)
    assert all((out / p).exists() or Path(p).exists() for p in outputs.values())
    assert (out / "vocab-wordpiece" / "vocab.txt").is_file() and (out / "vocab-bpe" / "spm.model").is_file()
