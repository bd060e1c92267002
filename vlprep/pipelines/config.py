"""Job options from a YAML file (`--config job.yaml`). Flags given on the command line win over the file,
the file wins over built-in defaults."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """The config file cannot be used: unreadable, not a mapping, or naming an unknown option."""


def normalize_key(key: str) -> str:
    """`--cpus-per-worker`, `cpus-per-worker` and `cpus_per_worker` all name the same option."""
    return str(key).lstrip("-").replace("-", "_")


def load_config(path: str | Path, known: Iterable[str] | None = None) -> dict[str, Any]:
    """The options in a YAML file as {option_name: value}; `known` (option names) rejects typos."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config {path} must be a mapping of option: value, not {type(data).__name__}")
    config = {normalize_key(k): v for k, v in data.items()}
    if known is not None:
        known = set(known)
        unknown = sorted(k for k in config if k not in known)
        if unknown:
            raise ConfigError(f"config {path}: unknown option(s) {', '.join(unknown)}")
    return config


def merge_options(
    config: Mapping[str, Any], flags: Mapping[str, Any], given: Iterable[str]
) -> dict[str, Any]:
    """`flags` (every option, defaults included) overlaid: the config's value for each option not `given`
    explicitly on the command line."""
    given = set(given)
    merged = dict(flags)
    for key, value in config.items():
        if key not in given:
            merged[key] = value
    return merged
