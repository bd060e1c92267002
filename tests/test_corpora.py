"""`vlprep manifest` on a miniature of each dataset's layout: generated images and videos, annotation files
with the real field names and nesting, and the ids, splits, captions and counts that come out."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from vlprep.cli import cli
from vlprep.corpora import CorpusError, build_manifest
from vlprep.corpora.webdataset import media_source, split_member_path
from vlprep.pipelines.inputs import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, InputError, Item, list_items


def _jpeg_bytes(seed: int, size=(12, 8)) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _image(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_jpeg_bytes(seed))
    return path


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory) -> bytes:
    from vlprep.demo.corpus import write_shapes_video

    path = tmp_path_factory.mktemp("video") / "v.mp4"
    write_shapes_video(path, seconds=0.5, fps=8, size=(32, 24), seed=0)
    return path.read_bytes()


def _video(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _json(path: Path, value) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def _manifest(dataset: str, root: Path, **kwargs) -> tuple[dict, dict[str, dict]]:
    out = root.parent / f"{dataset}.jsonl"
    summary = build_manifest(dataset, root, out, **kwargs)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == summary["items"]
    return summary, {r["id"]: r for r in rows}


def _coco_captions(path: Path, images: dict[int, str], captions: dict[int, list[str]]) -> None:
    _json(
        path,
        {
            "info": {"year": 2014},
            "licenses": [],
            "images": [{"id": i, "file_name": name, "width": 12, "height": 8} for i, name in images.items()],
            "annotations": [
                {"id": 100 * i + k, "image_id": i, "caption": text}
                for i, texts in captions.items()
                for k, text in enumerate(texts)
            ],
        },
    )


def test_coco2014_ids_are_lxmert_img_ids(tmp_path):
    root = tmp_path / "coco"
    for split, number in [
        ("train2014", 9),
        ("train2014", 25),
        ("val2014", 42),
        ("val2014", 73),
        ("test2015", 1),
    ]:
        _image(root / split / f"COCO_{split}_{number:012d}.jpg", number)
    _image(root / "val2014" / "thumbnail.jpg")  # not a COCO name: unlisted
    names = {i: f"COCO_train2014_{i:012d}.jpg" for i in (9, 25, 30)}  # 30 is not on disk
    _coco_captions(
        root / "annotations" / "captions_train2014.json", names, {9: ["a cat.", " a dog. "], 25: ["x"]}
    )
    _coco_captions(
        root / "annotations" / "captions_val2014.json", {42: "COCO_val2014_000000000042.jpg"}, {42: ["y"]}
    )

    summary, rows = _manifest("coco2014", root)
    assert list(rows) == [
        "COCO_test2015_000000000001",
        "COCO_train2014_000000000009",
        "COCO_train2014_000000000025",
        "COCO_val2014_000000000042",
    ]
    cat = rows["COCO_train2014_000000000009"]
    assert cat["split"] == "train2014" and cat["captions"] == ["a cat.", "a dog."] and cat["coco_id"] == 9
    assert cat["path"] == str(root / "train2014" / "COCO_train2014_000000000009.jpg")
    assert "captions" not in rows["COCO_test2015_000000000001"]
    assert summary["splits"] == {"test2015": 1, "train2014": 2, "val2014": 1}
    assert (summary["missing"], summary["duplicates"], summary["unlisted"], summary["captions"]) == (
        1,
        0,
        2,
        4,
    )
    assert summary["examples"]["missing"] == ["train2014/COCO_train2014_000000000030.jpg"]
    assert sorted(summary["examples"]["unlisted"]) == [
        "val2014/COCO_val2014_000000000073.jpg",
        "val2014/thumbnail.jpg",
    ]

    _, val = _manifest("coco2014", root, splits=["val2014"])
    assert list(val) == ["COCO_val2014_000000000042"]
    with pytest.raises(
        CorpusError, match="no split val2017 here; splits found: test2015, train2014, val2014"
    ):
        build_manifest("coco2014", root, tmp_path / "x.jsonl", splits=["val2017"])


def test_coco2017_ids_are_image_ids_and_a_missing_captions_file_is_named(tmp_path):
    root = tmp_path / "coco"
    _image(root / "train2017" / "000000000009.jpg")
    _image(root / "val2017" / "000000000139.jpg")
    _coco_captions(
        root / "annotations" / "captions_val2017.json", {139: "000000000139.jpg"}, {139: ["a room."]}
    )
    summary, rows = _manifest("coco2017", root)
    assert rows["139"]["split"] == "val2017" and rows["139"]["captions"] == ["a room."]
    assert rows["9"]["split"] == "train2017" and "captions" not in rows["9"]
    assert summary["notes"] == [
        "no captions_train2017.json (annotations_trainval2017.zip): train2017 listed from its folder, "
        "without captions"
    ]


def test_vg_integer_ids_with_coco_ids(tmp_path):
    root = tmp_path / "vg"
    _image(root / "VG_100K" / "1.jpg")
    _image(root / "VG_100K_2" / "2354786.jpg")
    _image(root / "VG_100K" / "99.jpg")  # not in image_data.json
    url = "https://cs.stanford.edu/people/rak248/{}/{}.jpg"
    _json(
        root / "image_data.json",
        [
            {
                "image_id": 1,
                "url": url.format("VG_100K", 1),
                "width": 12,
                "height": 8,
                "coco_id": None,
                "flickr_id": 5,
            },
            {
                "image_id": 2354786,
                "url": url.format("VG_100K_2", 2354786),
                "width": 12,
                "height": 8,
                "coco_id": 42,
            },
            {"image_id": 3, "url": url.format("VG_100K", 3), "width": 12, "height": 8, "coco_id": None},
        ],
    )
    summary, rows = _manifest("vg", root)
    assert list(rows) == ["1", "2354786"]
    assert rows["2354786"]["coco_id"] == 42 and rows["2354786"]["split"] == "all"
    assert (summary["missing"], summary["unlisted"]) == (1, 1)
    assert summary["examples"] == {"missing": ["3.jpg"], "duplicates": [], "unlisted": ["VG_100K/99.jpg"]}


def test_flickr30k_karpathy_split_and_token_file(tmp_path):
    root = tmp_path / "flickr30k"
    for stem in ("1000092795", "10002456", "1000268201"):
        _image(root / "flickr30k-images" / f"{stem}.jpg")
    images = [
        {"filename": "1000092795.jpg", "imgid": 0, "split": "train", "sentids": [0, 1],
         "sentences": [{"tokens": ["two", "men"], "raw": "Two men .", "imgid": 0, "sentid": 0},
                       {"tokens": ["a", "yard"], "raw": "A yard .", "imgid": 0, "sentid": 1}]},
        {"filename": "10002456.jpg", "imgid": 1, "split": "test", "sentids": [2],
         "sentences": [{"tokens": ["a", "crowd"], "raw": "A crowd .", "imgid": 1, "sentid": 2}]},
    ]  # fmt: skip
    karpathy = _json(
        tmp_path / "caption_datasets" / "dataset_flickr30k.json", {"images": images, "dataset": "flickr30k"}
    )
    summary, rows = _manifest("flickr30k", root, annotation_dirs=[karpathy.parent])
    assert rows["1000092795"] == {
        "id": "1000092795",
        "path": str(root / "flickr30k-images" / "1000092795.jpg"),
        "split": "train",
        "captions": ["Two men .", "A yard ."],
    }
    assert rows["10002456"]["split"] == "test" and summary["unlisted"] == 1

    (root / "results_20130124.token").write_text(
        "1000092795.jpg#0\tTwo young guys are outside .\n1000092795.jpg#1\tTwo men .\n"
        "1000268201.jpg#0\tA child .\n",
        encoding="utf-8",
    )
    summary, rows = _manifest("flickr30k", root)
    assert rows["1000092795"]["captions"] == ["Two young guys are outside .", "Two men ."]
    assert rows["1000268201"]["split"] == "all" and summary["unlisted"] == 1


def _shard(path: Path, samples: dict[str, dict[str, bytes]]) -> Path:
    """A webdataset shard as img2dataset writes it: KEY.jpg, KEY.txt, KEY.json per sample."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tf:
        for key, members in samples.items():
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def _sample(seed: int, caption: str | None, url: str = "http://x/y.jpg") -> dict[str, bytes]:
    meta = {
        "url": url,
        "caption": caption,
        "key": f"{seed:09d}",
        "status": "success",
        "width": 12,
        "height": 8,
    }
    out = {"jpg": _jpeg_bytes(seed), "json": json.dumps(meta, indent=4).encode()}
    if caption is not None:
        out["txt"] = caption.encode()
    return out


def test_cc3m_webdataset_tars_read_in_place(tmp_path):
    root = tmp_path / "cc3m"
    train = _shard(
        root / "training" / "00000.tar",
        {"000000000": _sample(0, "a dog on a beach"), "000000001": _sample(1, "a red car")},
    )
    _json(root / "training" / "00000_stats.json", {"count": 5, "successes": 2, "failed_to_download": 3,
                                                    "failed_to_resize": 0})  # fmt: skip
    _shard(root / "validation" / "00000.tar", {"000000000": _sample(7, "snow")})
    summary, rows = _manifest("cc3m", root)
    assert list(rows) == ["training/000000000", "training/000000001", "validation/000000000"]
    dog = rows["training/000000000"]
    assert (
        dog["captions"] == ["a dog on a beach"]
        and dog["split"] == "training"
        and dog["url"] == "http://x/y.jpg"
    )
    assert dog["path"] == f"{train}/000000000.jpg"
    assert summary["missing"] == 3 and summary["splits"] == {"training": 2, "validation": 1}
    # the member is read straight from the tar: no file was extracted
    assert split_member_path(dog["path"]) == (str(train), "000000000.jpg")
    assert media_source(dog["path"]) == _jpeg_bytes(0)
    assert sorted(p.name for p in (root / "training").iterdir()) == ["00000.tar", "00000_stats.json"]


def test_sbu_folders_and_duplicate_keys(tmp_path):
    root = tmp_path / "sbu"
    for key, caption in [("000000000", "a tree"), ("000000001", None)]:
        sample = _sample(int(key), caption)
        for ext, data in sample.items():
            (root / "00000").mkdir(parents=True, exist_ok=True)
            (root / "00000" / f"{key}.{ext}").write_bytes(data)
    (root / "00000" / "000000001.json").write_text(json.dumps({"caption": "from the json", "url": "u"}))
    _shard(root / "00001.tar", {"000000000": _sample(3, "again")})  # the same key twice: a duplicate
    summary, rows = _manifest("sbu", root)
    assert rows["000000001"]["captions"] == ["from the json"]
    assert summary["duplicates"] == 1 and summary["items"] == 2
    assert summary["examples"]["duplicates"][0].startswith("000000000 (")


def test_howto100m_youtube_ids_with_asr_segments(tmp_path, video_bytes):
    root = tmp_path / "howto100m"
    _video(root / "videos" / "-0Fg9ThJ_Ss.mp4", video_bytes)
    _video(root / "videos" / "zz9.webm", video_bytes)  # not in the CSV
    (root / "HowTo100M_v1.csv").write_text(
        "video_id,category_1,category_2,rank,task_id\n"
        "-0Fg9ThJ_Ss,Food and Entertaining,Drinks,27,52907\n"
        "nope1234567,Hobbies and Crafts,Crafts,3,77721\n",
        encoding="utf-8",
    )
    _json(
        root / "caption.json",
        {"-0Fg9ThJ_Ss": {"start": [1.5, 4.0], "end": [4.0, 7.25], "text": ["pour", "stir"]}},
    )
    summary, rows = _manifest("howto100m", root)
    video = rows["-0Fg9ThJ_Ss"]
    assert video["captions"] == ["pour", "stir"] and video["segments"] == [[1.5, 4.0], [4.0, 7.25]]
    assert video["task_id"] == "52907" and video["split"] == "all"
    assert (summary["missing"], summary["unlisted"], summary["captions"]) == (1, 1, 2)


def test_youcook2_splits_and_segments(tmp_path, video_bytes):
    root = tmp_path / "youcook2"
    _video(root / "raw_videos" / "training" / "113" / "GLd3aX16zBg.mp4", video_bytes)
    _video(root / "raw_videos" / "validation" / "212" / "9GX8f5EwwE4.mkv", video_bytes)
    database = {
        "GLd3aX16zBg": {
            "duration": 241.62, "subset": "training", "recipe_type": "113",
            "video_url": "https://www.youtube.com/watch?v=GLd3aX16zBg",
            "annotations": [{"segment": [90, 102], "id": 0, "sentence": "spread margarine on two slices"},
                            {"segment": [114, 127], "id": 1, "sentence": "place a slice of cheese"}],
        },
        "9GX8f5EwwE4": {
            "duration": 241.64, "subset": "validation", "recipe_type": "212",
            "video_url": "https://www.youtube.com/watch?v=9GX8f5EwwE4",
            "annotations": [{"segment": [25, 37], "id": 0, "sentence": "cut the onion"}],
        },
    }  # fmt: skip
    _json(root / "annotations" / "youcookii_annotations_trainval.json", {"database": database})
    _video(root / "raw_videos" / "testing" / "101" / "T35tXy_xNzA.webm", video_bytes)
    test = {"T35tXy_xNzA": {"duration": 100.0, "subset": "testing", "recipe_type": "101",
                            "annotations": [{"segment": [3, 9], "id": 0}]}}  # fmt: skip
    _json(root / "annotations" / "youcookii_annotations_test_segments_only.json", {"database": test})
    summary, rows = _manifest("youcook2", root)
    assert rows["T35tXy_xNzA"]["split"] == "testing" and rows["T35tXy_xNzA"]["segments"] == [[3.0, 9.0]]
    assert "captions" not in rows["T35tXy_xNzA"]
    first = rows["GLd3aX16zBg"]
    assert first["split"] == "training" and first["recipe_type"] == "113"
    assert first["captions"] == ["spread margarine on two slices", "place a slice of cheese"]
    assert first["segments"] == [[90.0, 102.0], [114.0, 127.0]]
    assert rows["9GX8f5EwwE4"]["split"] == "validation" and summary["captions"] == 3


def test_msrvtt_video_ids_and_a_note_for_the_absent_test_file(tmp_path, video_bytes):
    root = tmp_path / "msrvtt"
    for name in ("TrainValVideo/video0.mp4", "TrainValVideo/video6513.mp4", "TestVideo/video7010.mp4"):
        _video(root / name, video_bytes)
    videos = [
        {"category": 9, "url": "https://www.youtube.com/watch?v=9lZi22qLlEo", "video_id": "video0",
         "start time": 137.72, "end time": 149.44, "split": "train", "id": 0},
        {"category": 3, "url": "https://www.youtube.com/watch?v=x", "video_id": "video6513",
         "start time": 1.0, "end time": 11.0, "split": "validate", "id": 6513},
    ]  # fmt: skip
    sentences = [
        {"caption": "a car is shown", "video_id": "video0", "sen_id": 0},
        {"caption": "a man drives", "video_id": "video0", "sen_id": 1},
        {"caption": "people dance", "video_id": "video6513", "sen_id": 2},
    ]
    _json(root / "train_val_videodatainfo.json", {"info": {}, "videos": videos, "sentences": sentences})
    summary, rows = _manifest("msrvtt", root)
    assert (
        rows["video0"]["captions"] == ["a car is shown", "a man drives"]
        and rows["video0"]["split"] == "train"
    )
    assert rows["video0"]["start"] == 137.72 and rows["video6513"]["split"] == "validate"
    assert summary["unlisted"] == 1 and summary["examples"]["unlisted"] == ["TestVideo/video7010.mp4"]
    assert "test_videodatainfo.json" in summary["notes"][0]


def test_vatex_ids_keep_the_start_end_suffix(tmp_path, video_bytes):
    root = tmp_path / "vatex"
    _video(root / "clips" / "Ptf_2VRj-V0_000122_000132.mp4", video_bytes)
    _video(root / "clips" / "a_b_c_000001_000011.mp4", video_bytes)
    _json(
        root / "vatex_training_v1.0.json",
        [
            {
                "videoID": "Ptf_2VRj-V0_000122_000132",
                "enCap": ["a man plays", "he plays"],
                "chCap": ["一个男人"],
            }
        ],
    )
    _json(
        root / "vatex_validation_v1.0.json",
        [{"videoID": "a_b_c_000001_000011", "enCap": ["x"], "chCap": ["y"]}],
    )
    summary, rows = _manifest("vatex", root)
    clip = rows["Ptf_2VRj-V0_000122_000132"]
    assert (clip["youtube_id"], clip["start"], clip["end"]) == ("Ptf_2VRj-V0", 122, 132)
    assert clip["captions"] == ["a man plays", "he plays"] and clip["captions_zh"] == ["一个男人"]
    assert clip["split"] == "train" and rows["a_b_c_000001_000011"]["youtube_id"] == "a_b_c"


def test_cli_errors_name_what_was_expected(tmp_path):
    runner = CliRunner()
    root = tmp_path / "vg"
    _image(root / "VG_100K" / "1.jpg")
    args = ["--out", str(tmp_path / "m.jsonl"), "--no-progress"]
    result = runner.invoke(cli, ["manifest", "vg", str(root), *args])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: vg: expected image_data.json under {root} (or --annotations DIR): "
        "Visual Genome image metadata (image_data.json.zip)"
    ]
    (root / "image_data.json").write_text("[{not json")
    result = runner.invoke(cli, ["manifest", "vg", str(root), *args])
    assert result.exit_code == 1 and "cannot read it as JSON" in result.output
    (root / "image_data.json").write_text('[{"image_id": "one"}]')
    result = runner.invoke(cli, ["manifest", "vg", str(root), *args])
    assert result.exit_code == 1 and "image_data.json: not the expected format (ValueError" in result.output
    result = runner.invoke(cli, ["manifest", "msrvtt", str(root), *args])
    assert result.exit_code == 2 and "train_val_videodatainfo.json" in result.output
    assert not (tmp_path / "m.jsonl").exists()


def test_cli_summary_and_json(tmp_path):
    root = tmp_path / "coco"
    _image(root / "val2014" / "COCO_val2014_000000000042.jpg")
    _coco_captions(
        root / "captions_val2014.json", {42: "COCO_val2014_000000000042.jpg", 43: "gone.jpg"}, {42: ["a"]}
    )
    out = tmp_path / "m.jsonl"
    runner = CliRunner()
    result = runner.invoke(cli, ["manifest", "coco2014", str(root), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("manifest coco2014: 1 images (val2014 1), 1 captions; 1 missing, 0 duplicate ids")
    result = runner.invoke(cli, ["manifest", "coco2014", str(root), "--out", str(out), "--json"])
    summary = json.loads(result.output)
    assert (
        summary["items"] == 1
        and summary["missing"] == 1
        and summary["examples"]["missing"] == ["val2014/gone.jpg"]
    )


def test_every_command_reads_the_manifest(tmp_path, video_bytes):
    """Jobs list the manifest's ids and paths; vocab reads its captions, one line per caption."""
    from vlprep.tokenizers.subword.corpora import iter_lines

    root = tmp_path / "cc3m"
    tar = _shard(root / "00000.tar", {"000000000": _sample(0, "a dog"), "000000001": _sample(1, "a cat")})
    out = tmp_path / "cc3m.jsonl"
    build_manifest("cc3m", root, out)
    assert list_items([str(out)], IMAGE_EXTENSIONS) == [
        Item("000000000", f"{tar}/000000000.jpg"),
        Item("000000001", f"{tar}/000000001.jpg"),
    ]
    assert list(iter_lines([out], field="captions")) == ["a dog", "a cat"]
    with pytest.raises(
        ValueError, match=r"no record has text in the field 'caption' \(the first has: captions, id"
    ):
        list(iter_lines([out]))  # the default --field caption on a manifest: said, not a 5-token vocabulary

    vroot = tmp_path / "msrvtt"
    _video(vroot / "video0.mp4", video_bytes)
    _json(vroot / "train_val_videodatainfo.json", {"videos": [{"video_id": "video0", "split": "train"}],
                                                    "sentences": []})  # fmt: skip
    build_manifest("msrvtt", vroot, tmp_path / "msrvtt.jsonl")
    assert list_items([str(tmp_path / "msrvtt.jsonl")], VIDEO_EXTENSIONS) == [
        Item("video0", str(vroot / "video0.mp4"))
    ]


def test_a_tar_given_directly_is_listed_and_decoded_in_place(tmp_path):
    from vlprep.extractors.decode.errors import DecodeError
    from vlprep.pipelines.regions import decode

    tar = _shard(
        tmp_path / "shards" / "00000.tar", {"000000000": _sample(0, "a"), "000000001": {"jpg": b"broken"}}
    )
    items = list_items([str(tar)], IMAGE_EXTENSIONS)
    assert [i.id for i in items] == ["000000000.jpg", "000000001.jpg"]
    assert [i.id for i in list_items([str(tmp_path / "shards" / "*.tar")], IMAGE_EXTENSIONS)] == [
        "00000.tar/000000000.jpg",
        "00000.tar/000000001.jpg",
    ]
    pixels = decode(items[0])
    assert pixels.shape == (8, 12, 3) and pixels.dtype == np.uint8
    with pytest.raises(DecodeError, match=f"^{tar}/000000001.jpg: not an image"):
        decode(items[1])
    with pytest.raises(OSError, match="no member 'nope.jpg'"):
        decode(Item("x", f"{tar}/nope.jpg"))
    dotted = tmp_path / "dotted.tar"
    with tarfile.open(dotted, "w") as tf:  # what `tar cf dotted.tar .` writes
        info = tarfile.TarInfo("./sub/a.jpg")
        info.size = len(_jpeg_bytes(0))
        tf.addfile(info, io.BytesIO(_jpeg_bytes(0)))
    (item,) = list_items([str(dotted)], IMAGE_EXTENSIONS)
    assert item == Item("sub/a.jpg", f"{dotted}/sub/a.jpg") and decode(item).shape == (8, 12, 3)
    with pytest.raises(InputError, match="images only"):
        list_items([str(tar)], VIDEO_EXTENSIONS, tar_members=False)


def test_regions_job_on_a_webdataset_manifest(ray_local, tmp_path):
    """The whole path a CC3M user takes: img2dataset tars -> manifest -> regions store keyed by the
    manifest's ids, the images read from the tar, a broken member recorded as a decode error."""
    import torch

    from vlprep.extractors.regions.config import RegionConfig
    from vlprep.pipelines.regions import run_regions
    from vlprep.pipelines.runner import RunOptions
    from vlprep.store import FeatureStore

    root = tmp_path / "cc3m"
    # 64x48 images: a 12x8 one keeps no box, which is an error record (stage `select`), not an item
    samples = {
        key: {**_sample(n, "ab"[n]), "jpg": _jpeg_bytes(n, (64, 48))}
        for n, key in enumerate(["000000000", "000000001"])
    }
    tar = _shard(root / "training" / "00000.tar", {**samples, "000000002": {"jpg": b"broken"}})
    build_manifest("cc3m", root, tmp_path / "cc3m.jsonl")
    options = RegionConfig(
        weights="random", boxes=(2, 4), min_size=64, max_size=96, rpn_pre_nms=100, rpn_post_nms=8
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = run_regions(
            [str(tmp_path / "cc3m.jsonl")],
            tmp_path / "store",
            options,
            RunOptions(cpus_per_worker=1, threads_per_worker=1, progress=False),
            batch_size=2,
        )
    finally:
        torch.set_num_threads(threads)
    assert (summary["ok"], summary["failed"]) == (2, 1)
    store = FeatureStore(tmp_path / "store")
    assert sorted(store.ids()) == ["training/000000000", "training/000000001"]
    assert store["training/000000000"]["path"] == f"{tar}/000000000.jpg"
    (error,) = store.errors()
    assert error["id"] == "training/000000002" and "000000002.jpg: not an image" in error["message"]
