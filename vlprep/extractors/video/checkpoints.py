"""Reading published video-model checkpoints: safe loads, layout detection, renaming, strict checks.

Loading never executes code: `torch.load(weights_only=True)` refuses pickles that reference anything
but tensors and plain containers. Loads are strict: every missing or unexpected name is an error that
names it, except BatchNorm's `num_batches_tracked` counters (absent from older files, unused at
inference) and the parts of a file a feature extractor does not use (declared per model).
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from vlprep.weights_files import WeightsFileError, sniff_container, torch_load_refusal

COUNTER_SUFFIX = "num_batches_tracked"


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, unsafe, or does not match the model's layout."""


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a `.pth`/`.pt` file: a flat state dict, or one wrapped as {'state_dict': ...}
    (3D-ResNets' training checkpoints); a leading `module.` (DataParallel) is stripped."""
    path = os.fspath(path)
    try:  # missing, empty or a text file: one clear line instead of torch's KeyError
        sniff_container(path)
    except WeightsFileError as exc:
        raise CheckpointError(str(exc)) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"refused to load {path}: {torch_load_refusal(exc)}") from exc
    except (RuntimeError, EOFError, OSError, KeyError, IndexError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}") from exc
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict")
    state = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        state[key.removeprefix("module.")] = value
    return state


# kylemin/S3D names -> torchvision S3D names; order matters (branch0 drops a level before the generic rules)
_KYLEMIN_RULES = [
    (re.compile(r"^fc\.0\."), "classifier.1."),
    (re.compile(r"^base\."), "features."),
    (re.compile(r"\.branch0\.0\.conv\."), ".branch0.0."),
    (re.compile(r"\.branch0\.0\.bn\."), ".branch0.1."),
    (re.compile(r"\.conv_s\."), ".0.0."),
    (re.compile(r"\.bn_s\."), ".0.1."),
    (re.compile(r"\.conv_t\."), ".1.0."),
    (re.compile(r"\.bn_t\."), ".1.1."),
    (re.compile(r"\.conv\."), ".0."),
    (re.compile(r"\.bn\."), ".1."),
]


def kylemin_to_torchvision(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a kylemin/S3D state dict (`base.*`, `fc.0.*`) to torchvision's S3D names."""
    out = {}
    for key, value in state.items():
        for pattern, repl in _KYLEMIN_RULES:
            key = pattern.sub(repl, key)
        out[key] = value
    return out


def detect_s3d_layout(state: Mapping[str, torch.Tensor]) -> str:
    """ "kylemin" (`base.*`) or "torchvision" (`features.*`)."""
    if any(k.startswith("base.") for k in state):
        return "kylemin"
    if any(k.startswith("features.") for k in state):
        return "torchvision"
    first = next(iter(state), "<empty>")
    raise CheckpointError(
        f"not an S3D checkpoint: expected keys under 'features.' or 'base.', found {first!r}"
    )


def load_strict(
    model: nn.Module, state: Mapping[str, torch.Tensor], ignore_prefixes: Iterable[str] = (), source: str = ""
) -> None:
    """Copy `state` into `model`, refusing any missing, unexpected or mis-shaped name (named in the error)."""
    ignore = tuple(ignore_prefixes)
    where = f" in {source}" if source else ""
    expected = model.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith(ignore)}
    missing = [k for k in expected if k not in state and not k.endswith(COUNTER_SUFFIX)]
    unexpected = [k for k in state if k not in expected]
    if missing:
        raise CheckpointError(f"missing key {missing[0]!r}{where} ({len(missing)} missing){_also(missing)}")
    if unexpected:
        raise CheckpointError(
            f"unexpected key {unexpected[0]!r}{where} ({len(unexpected)} unexpected){_also(unexpected)}"
        )
    for key, value in state.items():
        want = tuple(expected[key].shape)
        if tuple(value.shape) != want:
            raise CheckpointError(f"key {key!r}{where} has shape {tuple(value.shape)}, expected {want}")
    if any(t.is_meta for t in expected.values()):
        # built on the meta device: take the file's tensors as the parameters (no init, no copy)
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        model.load_state_dict(state, strict=False, assign=True)
        _materialise_counters(model)
    else:
        model.load_state_dict(state, strict=False)


def _materialise_counters(model: nn.Module) -> None:
    """BatchNorm counters absent from the file: zeros, as a fresh model would hold."""
    for module in model.modules():
        for name, buf in list(module._buffers.items()):
            if buf is not None and buf.is_meta:
                if not name.endswith(COUNTER_SUFFIX):
                    raise CheckpointError(f"buffer {name!r} was not loaded")
                module._buffers[name] = torch.zeros(buf.shape, dtype=buf.dtype)


def _also(keys: list[str]) -> str:
    return (
        "; also " + ", ".join(repr(k) for k in keys[1:4]) + (" ..." if len(keys) > 4 else "")
        if len(keys) > 1
        else ""
    )
