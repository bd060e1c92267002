"""The supported datasets: name -> reader, media kind and id convention (details in each module)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import coco, flickr30k, howto100m, img2dataset, msrvtt, vatex, vg, youcook2
from .base import Collector, Tree


@dataclass(frozen=True)
class Corpus:
    name: str
    media: str  # "image" or "video": which command takes the manifest
    id_convention: str  # one line, for --help and the summary
    scan: Callable[[Tree, Collector], None]


DATASETS: dict[str, Corpus] = {
    c.name: c
    for c in (
        Corpus(
            "coco2014", "image", "file stem, COCO_val2014_000000000042 (LXMERT img_id)", coco.scan_coco2014
        ),
        Corpus("coco2017", "image", "COCO image_id, 139", coco.scan_coco2017),
        Corpus("vg", "image", "Visual Genome image_id, 2354786", vg.scan_vg),
        Corpus("flickr30k", "image", "Flickr photo id, 1000092795", flickr30k.scan_flickr30k),
        Corpus(
            "cc3m", "image", "img2dataset key, 000000031 (SPLIT/KEY in a split folder)", img2dataset.scan_cc3m
        ),
        Corpus(
            "sbu", "image", "img2dataset key, 000000031 (SPLIT/KEY in a split folder)", img2dataset.scan_sbu
        ),
        Corpus("howto100m", "video", "YouTube id, -0Fg9ThJ_Ss", howto100m.scan_howto100m),
        Corpus("youcook2", "video", "YouTube id, GLd3aX16zBg", youcook2.scan_youcook2),
        Corpus("msrvtt", "video", "video0 ... video9999", msrvtt.scan_msrvtt),
        Corpus("vatex", "video", "YouTube id + _start_end, Ptf_2VRj-V0_000122_000132", vatex.scan_vatex),
    )
}
