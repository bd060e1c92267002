"""Reading the published checkpoints of the bottom-up-attention model into `VGFasterRCNN`.

Formats (DESIGN.md §4; key layouts in reference/regions_checkpoints.md):

- ``d2``: detectron2 pickle (`faster_rcnn_from_caffe_attr.pkl`), ``{"model": {name: ndarray}, ...}``,
  names are this model's. Read by a restricted unpickler that admits only containers, strings,
  numbers and numpy arrays.
- ``hf``: Hugging Face `unc-nlp/frcnn-vg-finetuned` `pytorch_model.bin`: the same names plus batch-norm
  counters, read with ``torch.load(weights_only=True)``.
- ``milvlg``: MILVLG `bua-caffe-frcn-r101-k36.pth` / `-k10-100.pth`: Caffe order (background and
  "no attribute" first), a 24-channel softmax RPN, 6404-row `bbox_pred` for regression weights
  (1,1,1,1), heads named `cls_embed` / `attr_linear1` / `attr_linear2`. Converted here, in one place.

Loading is strict: apart from the anchor buffer (used as stored, generated per the format's convention
when absent) and batch-norm counters (meaningless for frozen norms), a missing, unexpected or
mis-shaped tensor is an error that names it.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vlprep.checksums import file_sha256
from vlprep.weights_files import WeightsFileError, sniff_container, torch_load_refusal

from .anchors import cell_anchors_for
from .model import ANCHORS_KEY, VGFasterRCNN
from .predictor import NUM_CLASSES

FORMATS = ("d2", "hf", "milvlg")

# Per format: anchor convention used when the checkpoint has no anchor buffer, and box convention
# (+1 widths, clip to W-1) of the code the weights were converted for.
CONVENTIONS = {
    "d2": {"anchors": "d2", "plus_one": False},
    "hf": {"anchors": "d2", "plus_one": False},
    "milvlg": {"anchors": "caffe", "plus_one": True},
    "random": {"anchors": "d2", "plus_one": False},
}

# Caffe's bbox_pred was un-normalised by stds (0.1, 0.1, 0.2, 0.2) when saved, so MILVLG decodes with
# weights (1,1,1,1); this model decodes with detectron2's (10, 10, 5, 5), hence the row scaling.
_ROI_WEIGHT_SCALE = (10.0, 10.0, 5.0, 5.0)
_MAX_NAMES_IN_ERROR = 12


class CheckpointError(Exception):
    """A checkpoint could not be read, or does not fit the model; the message names what and why."""


@dataclass(frozen=True)
class LoadedWeights:
    format: str
    sha256: str
    anchors_from_checkpoint: bool
    plus_one: bool


# -- reading files -----------------------------------------------------------------------------------


def _numpy_globals() -> dict[tuple[str, str], object]:
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric
    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): __import__("collections").OrderedDict,
        # protocol-2 pickles written by Python 3 encode bytes as _codecs.encode(str, "latin1")
        ("_codecs", "encode"): __import__("codecs").encode,
    }
    for module in ("numpy.core", "numpy._core"):
        allowed[(f"{module}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{module}.multiarray", "scalar")] = multiarray.scalar
        if hasattr(numeric, "_frombuffer"):
            allowed[(f"{module}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class _ArrayUnpickler(pickle.Unpickler):
    """Admits dicts, lists, tuples, strings, numbers and numpy arrays; any other global (a function
    that would run on load, like os.system) is refused before it is even imported."""

    _allowed = _numpy_globals()

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"refusing to unpickle global {module}.{name}: a weights pickle may only hold "
                "containers, strings, numbers and numpy arrays"
            ) from None

    def persistent_load(self, pid):
        raise CheckpointError("refusing to unpickle a persistent id: not a plain numpy-array pickle")


def _load_pickle(data: bytes) -> object:
    try:
        return _ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"not a readable pickle: {exc}") from exc


def _load_torch(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(torch_load_refusal(exc)) from exc
    except Exception as exc:
        raise CheckpointError(f"torch.load failed: {str(exc).splitlines()[0]}") from exc


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """The flat name -> tensor dict of a checkpoint file, and its container ("pickle" | "torch")."""
    path = Path(path)
    try:  # missing, empty or a text file: one clear line instead of torch's IndexError
        sniff_container(path)
    except WeightsFileError as exc:
        raise CheckpointError(str(exc)) from None
    if zipfile.is_zipfile(path):
        container, obj = "torch", _load_torch(path)
    elif path.suffix == ".pkl":
        container, obj = "pickle", _load_pickle(path.read_bytes())
    else:
        try:
            container, obj = "torch", _load_torch(path)
        except CheckpointError as torch_error:
            try:
                container, obj = "pickle", _load_pickle(path.read_bytes())
            except CheckpointError as pickle_error:
                raise CheckpointError(f"{path}: {torch_error}; as a numpy pickle: {pickle_error}") from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]  # detectron2 wraps the weights; other top-level keys are metadata
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(
            f"{path}: expected a mapping of parameter names to arrays, got {type(obj).__name__}"
        )
    state: dict[str, torch.Tensor] = {}
    for name, value in obj.items():
        if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
            state[str(name)] = torch.from_numpy(np.ascontiguousarray(value))
        elif isinstance(value, torch.Tensor):
            state[str(name)] = value
        else:
            raise CheckpointError(f"{path}: entry {name!r} is a {type(value).__name__}, not a numeric array")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state, container


# -- layouts ----------------------------------------------------------------------------------------


def detect_format(state: dict[str, torch.Tensor], container: str) -> str:
    predictor = "roi_heads.box_predictor."
    objectness = state.get("proposal_generator.rpn_head.objectness_logits.weight")
    if (
        predictor + "cls_embed.weight" in state
        or predictor + "attr_linear1.weight" in state
        or (objectness is not None and objectness.shape[0] == 24)
    ):
        return "milvlg"
    if predictor + "cls_embedding.weight" in state or predictor + "cls_score.weight" in state:
        return "hf" if container == "torch" else "d2"
    raise CheckpointError(
        "cannot tell the checkpoint format from its keys (no box predictor found); "
        "pass weights_format explicitly"
    )


def _background_last(t: torch.Tensor) -> torch.Tensor:
    return torch.cat([t[1:], t[:1]])


def _take(state: dict, name: str) -> torch.Tensor:
    try:
        return state.pop(name)
    except KeyError:
        raise CheckpointError(f"MILVLG checkpoint lacks {name}") from None


def convert_milvlg(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """MILVLG (Caffe order) -> this model's detectron2 layout. Backbone, RPN conv and res5 names are
    already the same; the anchor buffer, if present, stays as stored (it carries the Caffe anchor order
    that the RPN channels follow)."""
    state = dict(state)
    out: dict[str, torch.Tensor] = {}
    rpn = "proposal_generator.rpn_head.objectness_logits."
    for suffix in ("weight", "bias"):
        t = _take(state, rpn + suffix).float()
        if t.shape[0] != 24:
            raise CheckpointError(
                f"MILVLG {rpn + suffix} should have 24 rows (bg x12, fg x12), has {t.shape[0]}"
            )
        # softmax([bg, fg])[fg] == sigmoid(fg - bg): channels 0-11 are background, 12-23 foreground.
        out[rpn + suffix] = t[12:] - t[:12]
    p = "roi_heads.box_predictor."
    for suffix in ("weight", "bias"):
        out[p + "cls_score." + suffix] = _background_last(_take(state, p + "cls_score." + suffix))
        bbox = _take(state, p + "bbox_pred." + suffix).float()
        if bbox.shape[0] != (NUM_CLASSES + 1) * 4:
            raise CheckpointError(f"MILVLG {p}bbox_pred.{suffix} should have 6404 rows, has {bbox.shape[0]}")
        scale = bbox.new_tensor(_ROI_WEIGHT_SCALE).repeat(NUM_CLASSES)
        scale = scale.reshape(-1, *([1] * (bbox.dim() - 1)))
        out[p + "bbox_pred." + suffix] = bbox[4:] * scale
        out[p + "fc_attr." + suffix] = _take(state, p + "attr_linear1." + suffix)
        out[p + "attr_score." + suffix] = _background_last(_take(state, p + "attr_linear2." + suffix))
    # The embedding is indexed by the argmax class, so its rows follow the class order.
    out[p + "cls_embedding.weight"] = _background_last(_take(state, p + "cls_embed.weight"))
    state.update(out)
    return state


# -- loading ----------------------------------------------------------------------------------------


def _names(keys) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_MAX_NAMES_IN_ERROR])
    more = f" and {len(keys) - _MAX_NAMES_IN_ERROR} more" if len(keys) > _MAX_NAMES_IN_ERROR else ""
    return f"{shown}{more}"


def load_state(
    model: VGFasterRCNN, state: dict[str, torch.Tensor], fmt: str, source: str = "checkpoint"
) -> bool:
    """Strictly load a state dict already in this model's layout. Returns whether the anchors came from
    the checkpoint."""
    state = dict(state)
    expected = model.state_dict()
    anchors = state.pop(ANCHORS_KEY, None)
    for key in [k for k in state if k.endswith(".num_batches_tracked")]:
        if key[: -len("num_batches_tracked")] + "running_var" in expected:
            del state[key]
    wanted = set(expected) - {ANCHORS_KEY}
    missing, unexpected = wanted - set(state), set(state) - wanted
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s): {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} key(s): {_names(unexpected)}")
    mismatched = [
        f"{k} {list(state[k].shape)} (model {list(expected[k].shape)})"
        for k in sorted(wanted & set(state))
        if state[k].shape != expected[k].shape
    ]
    if mismatched:
        problems.append(f"shape mismatch: {_names(mismatched)}")
    if anchors is not None and tuple(anchors.shape) != tuple(expected[ANCHORS_KEY].shape):
        problems.append(
            f"shape mismatch: {ANCHORS_KEY} {list(anchors.shape)} (model {list(expected[ANCHORS_KEY].shape)})"
        )
    if problems:
        raise CheckpointError(f"{source} ({fmt} format) does not fit the model: " + "; ".join(problems))
    from_checkpoint = anchors is not None
    if anchors is None:
        anchors = torch.from_numpy(cell_anchors_for(CONVENTIONS[fmt]["anchors"]))
    state[ANCHORS_KEY] = anchors.float()
    model.load_state_dict(state, strict=True)
    model.proposal_generator.anchor_generator.set_cell_anchors(anchors.float())
    return from_checkpoint


def load_weights(model: VGFasterRCNN, path: str | Path, weights_format: str = "auto") -> LoadedWeights:
    state, container = read_checkpoint(path)
    fmt = detect_format(state, container) if weights_format == "auto" else weights_format
    if fmt not in FORMATS:
        raise CheckpointError(f"unknown weights format {fmt!r} (expected auto, {', '.join(FORMATS)})")
    if fmt == "milvlg":
        state = convert_milvlg(state)
    from_checkpoint = load_state(model, state, fmt, source=str(path))
    return LoadedWeights(
        format=fmt,
        sha256=file_sha256(path),
        anchors_from_checkpoint=from_checkpoint,
        plus_one=CONVENTIONS[fmt]["plus_one"],
    )


__all__ = [
    "CONVENTIONS",
    "FORMATS",
    "CheckpointError",
    "LoadedWeights",
    "convert_milvlg",
    "detect_format",
    "file_sha256",
    "load_state",
    "load_weights",
    "read_checkpoint",
]
