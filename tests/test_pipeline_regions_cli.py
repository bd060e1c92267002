"""`vlprep regions` end to end with the real RegionExtractor (random weights, small sizes) on a local Ray:
broken inputs, --strict, --config, rendering, kill -9 and resume, and a two-node cluster via --address."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from vlprep.cli import cli
from vlprep.store import FeatureStore

VLPREP = (
    [sys.executable, "-m", "vlprep.cli.__main__"] if False else [str(Path(sys.executable).parent / "vlprep")]
)
SMALL = [
    "--weights", "random", "--min-size", "64", "--max-size", "96", "--boxes", "2-4",
    "--rpn-pre-nms", "100", "--rpn-post-nms", "8", "--batch-size", "2",
]  # fmt: skip
GOOD = {
    "rgb.jpg",
    "gray.png",
    "rgba.png",
    "palette.gif",
    "sub/cmyk.jpg",
    "sub/exif.jpg",
    "deep16.png",
}
BROKEN = {"empty.jpg", "truncated.jpg", "notimage.png"}
# a 10x12 image scaled to 64 px keeps no proposal above the RPN's scaled minimum size: an error record
# (stage `select`), never an "ok" record with 0 boxes
NO_BOX = {"sub/tiny.png"}
FAILED = BROKEN | NO_BOX


def _image(rng: np.random.Generator, h: int, w: int) -> Image.Image:
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], axis=2)
    noise = rng.integers(0, 40, size=(h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def _corpus(root: Path) -> Path:
    rng = np.random.default_rng(0)
    (root / "sub").mkdir(parents=True)
    _image(rng, 48, 64).save(root / "rgb.jpg", quality=90)
    _image(rng, 60, 40).convert("L").save(root / "gray.png")
    rgba = _image(rng, 40, 56).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(root / "rgba.png")
    _image(rng, 44, 44).convert("P").save(root / "palette.gif")
    _image(rng, 50, 70).convert("CMYK").save(root / "sub" / "cmyk.jpg")
    _image(rng, 10, 12).save(root / "sub" / "tiny.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees on display
    _image(rng, 40, 56).save(root / "sub" / "exif.jpg", exif=exif)
    deep = (np.asarray(_image(rng, 36, 52).convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(root / "deep16.png")
    (root / "empty.jpg").write_bytes(b"")
    data = (root / "rgb.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "notimage.png").write_text("this is not an image\n")
    (root / "notes.txt").write_text("not listed: wrong extension\n")
    return root


@pytest.fixture(scope="module")
def reference(ray_local, tmp_path_factory):
    """One uninterrupted run, its options from a YAML config, a flag overriding one of them."""
    root = tmp_path_factory.mktemp("regions")
    corpus = _corpus(root / "images")
    config = root / "job.yaml"
    options = dict(zip([a.lstrip("-") for a in SMALL[0::2]], SMALL[1::2], strict=True))
    options.update({"boxes": "36", "cpus-per-worker": 1, "shard-size": 2, "inputs": [str(corpus)]})
    config.write_text(yaml.safe_dump(options))
    out = root / "store"
    result = CliRunner().invoke(
        cli, ["regions", "--config", str(config), "--boxes", "2-4", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    return corpus, out, summary


def test_broken_inputs_are_recorded_and_strict_fails(reference):
    corpus, out, summary = reference
    assert (summary["ok"], summary["failed"], summary["skipped"]) == (len(GOOD), len(FAILED), 0)
    assert summary["failed_by_stage"] == {"decode": len(BROKEN), "select": len(NO_BOX)}
    store = FeatureStore(out)
    assert store.kind == "regions" and set(store.ids()) == GOOD
    assert store.producer["boxes"] == [2, 4]  # the flag beat the config's 36
    # no --recipe: butd-caffe, with what the flags changed recorded next to its name
    assert store.producer["recipe"] == "butd-caffe" and store.producer["resize"] == "caffe"
    assert store.producer["overrides"]["boxes"] == [[10, 100], [2, 4]]
    assert store.producer["overrides"]["min_size"] == [600, 64]
    errors = {e["id"]: e for e in store.errors()}
    assert set(errors) == FAILED
    assert "empty" in errors["empty.jpg"]["message"] and "truncated" in errors["truncated.jpg"]["message"]
    assert errors["sub/tiny.png"]["stage"] == "select" and "12x10 image" in errors["sub/tiny.png"]["message"]
    assert "not an image" in errors["notimage.png"]["message"]
    for item_id in GOOD:
        rec = store[item_id]
        n = int(rec["num_boxes"])
        assert 2 <= n <= 4
        assert rec["features"].shape == (n, 2048) and rec["boxes"].shape == (n, 4)
        assert rec["path"] == os.path.abspath(corpus / item_id)  # absolute: renders work from anywhere
    assert (int(store["sub/exif.jpg"]["image_h"]), int(store["sub/exif.jpg"]["image_w"])) == (56, 40)
    assert store.meta["runs"][-1]["ok"] == len(GOOD)

    # same command with --strict: good images skipped, broken ones retried and failing again -> exit 1
    result = CliRunner().invoke(
        cli,
        ["regions", str(corpus), "--out", str(out), *SMALL, "--cpus-per-worker", "1", "--strict", "--json"],
    )
    assert result.exit_code == 1, result.output
    again = json.loads(result.stdout)
    assert (again["ok"], again["failed"], again["skipped"]) == (0, len(FAILED), len(GOOD))

    # other extraction parameters on the same store: refused, naming the parameter (usage, exit 2)
    small = [a if a != "2-4" else "3-5" for a in SMALL]
    result = CliRunner().invoke(
        cli, ["regions", str(corpus), "--out", str(out), *small, "--cpus-per-worker", "1"]
    )
    assert result.exit_code == 2 and "boxes" in result.output and "--overwrite" in result.output
    assert set(FeatureStore(out).ids()) == GOOD


def test_render_from_recorded_path(reference, tmp_path):
    from vlprep.render.regions import LEGEND_WIDTH, PALETTE, render_region_item

    corpus, out, _ = reference
    store = FeatureStore(out)
    png = np.asarray(Image.open(render_region_item(store, "rgb.jpg", tmp_path / "r.png")).convert("RGB"))
    # the 64x48 image is drawn enlarged to a readable 640x480, with the legend on its right
    assert png.shape == (480, 640 + LEGEND_WIDTH, 3)
    rec = store["rgb.jpg"]
    best = int(np.argmax(rec["object_scores"]))
    x1, y1, x2, y2 = (int(round(float(v) * 10)) for v in rec["boxes"][best])
    edge = png[min(max(y1, 0), 479) : min(max(y2, 1), 480), min(max(x1, 0), 639)]
    assert (np.abs(edge.astype(int) - np.array(PALETTE[0])).sum(axis=1) == 0).any()
    # the same through `vlprep inspect --render`
    args = ["inspect", str(out), "--id", "rgb.jpg", "--render", str(tmp_path / "i.png")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "i.png").convert("RGB")), png)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", **extra)
    env.pop("RAY_ADDRESS", None)
    return env


def _assert_same_store(a: Path, b: Path) -> None:
    sa, sb = FeatureStore(a), FeatureStore(b)
    assert sorted(sa.ids()) == sorted(sb.ids())
    for item_id in sa.ids():
        ra, rb = sa[item_id], sb[item_id]
        assert int(ra["num_boxes"]) == int(rb["num_boxes"])
        np.testing.assert_allclose(ra["features"], rb["features"], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ra["boxes"], rb["boxes"], rtol=1e-4, atol=1e-3)


# auto: one worker here, so the driver writes; workers: the model actor writes its own shards
@pytest.mark.parametrize("shard_writes", ["auto", "workers"])
def test_kill_9_then_resume_gives_the_uninterrupted_store(reference, tmp_path, shard_writes):
    corpus, ref_out, _ = reference
    out = tmp_path / "store"
    cmd = [
        *VLPREP,
        "regions",
        str(corpus),
        "--out",
        str(out),
        *SMALL,
        "--batch-size",
        "1",
        "--shard-size",
        "1",
        "--shard-writes",
        shard_writes,
    ]
    cmd += ["--num-cpus", "2", "--no-progress"]
    proc = subprocess.Popen(
        cmd, env=_env(), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    committed = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "index.sqlite").exists():
                with FeatureStore(out) as store:
                    committed = len(store)
                if committed >= 1:
                    break
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9 of the command and every process it started
        proc.wait()
    assert 0 < committed < len(GOOD), f"the job was not caught mid-way ({committed} committed)"
    assert len(FeatureStore(out)) < len(GOOD)

    done = subprocess.run(cmd + ["--json"], env=_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["skipped"] >= 1 and summary["ok"] + summary["skipped"] == len(GOOD)
    _assert_same_store(out, ref_out)
    assert {e["id"] for e in FeatureStore(out).errors()} == FAILED


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_address_spreads_over_a_two_node_cluster(reference, tmp_path):
    corpus, ref_out, _ = reference
    ray_bin = str(Path(sys.executable).parent / "ray")
    temp_dir = Path(f"/tmp/vlp{os.getpid()}")  # short: Ray's unix socket paths have a length limit
    port = _free_port()
    # token auth off for this throw-away localhost cluster, and a private temp dir so that no other
    # ray.init() on the machine finds it
    env = _env(RAY_AUTH_MODE="disabled")
    common = ["--block", "--num-cpus=1", "--object-store-memory=150000000"]
    head_args = ["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp_dir}"]
    head = subprocess.Popen(
        [ray_bin, "start", *head_args, *common],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    nodes = [head]
    try:
        address = f"127.0.0.1:{port}"
        time.sleep(2)
        nodes.append(
            subprocess.Popen(
                [ray_bin, "start", f"--address={address}", *common],
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        )
        out = tmp_path / "store"
        cmd = [*VLPREP, "regions", str(corpus), "--out", str(out), *SMALL, "--address", address]
        cmd += [
            "--workers",
            "2",
            "--cpus-per-worker",
            "0.5",
            "--decode-cpus",
            "0.25",
            "--json",
            "--no-progress",
        ]
        _wait_for_nodes(address, env, 2)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        summary = json.loads(done.stdout)
        assert len(summary["nodes"]) == 2, summary["nodes"]
        assert all(count > 0 for count in summary["nodes"].values())
        assert summary["ok"] == len(GOOD) and summary["failed"] == len(FAILED)
        _assert_same_store(out, ref_out)
    finally:
        for node in nodes:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()
        subprocess.run(["rm", "-rf", str(temp_dir)], check=False)


def _wait_for_nodes(address: str, env: dict, count: int) -> None:
    probe = (
        f"import ray; ray.init(address='{address}', log_to_driver=False); "
        "print(len([n for n in ray.nodes() if n['Alive']]))"
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
        )
        if out.returncode == 0 and out.stdout.strip() == str(count):
            return
        time.sleep(1)
    raise AssertionError(f"the Ray cluster at {address} did not come up with {count} nodes")
