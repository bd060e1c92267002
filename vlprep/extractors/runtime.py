"""Where and in what precision an extractor runs: the names the configs and the CLI accept, and the one
rule that turns them into torch objects. Importing this module does not import torch."""

from __future__ import annotations

from typing import Any

PRECISIONS = ("fp32", "fp16", "bf16")


def choose_device(device: str | None = None, gpus_per_worker: float | None = None) -> str | None:
    """Where a pipeline's model actors run, decided on the driver: `device` when given (other than
    "auto"); else CUDA exactly when GPUs are reserved for each actor (`gpus_per_worker` > 0). None when
    the GPUs are left to the cluster: each actor then takes `torch_device(None)`, CUDA when Ray gave it
    a GPU (Ray hides GPUs from actors that reserve none)."""
    if device and device != "auto":
        return str(device)
    if gpus_per_worker is None:
        return None
    return "cuda" if gpus_per_worker > 0 else "cpu"


def torch_device(device: str | None = None) -> Any:
    """The torch device to build a model on: `device` when given (other than "auto"), else CUDA when
    this process sees one, else the CPU."""
    import torch

    if device and device != "auto":
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def torch_dtype(precision: str) -> Any:
    """fp32 / fp16 / bf16 -> the torch dtype."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (expected one of {', '.join(PRECISIONS)})")
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
