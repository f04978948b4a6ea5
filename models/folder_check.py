"""Check a model folder before anything is allocated: config types and ranges, a parameter budget, the weights header.

    from models.folder_check import check_model_folder, check_finite
    model_class, kwargs = check_model_folder(folder, config)   # ValueError with one sentence, nothing allocated
    ...                                                          # build the real network, load the weights
    check_finite(model, folder)                                  # refuse NaN / inf weights

Why: the network used to be built from config.json before the weights were looked at, so `base_width: 512` or
`depth: 1000` allocated 6.6-7.5 GB before failing, and int8 or NaN weights loaded silently. Here the network is
built on PyTorch's `meta` device (shapes only, no memory), its parameter count is checked against a budget, and the
safetensors header (names, shapes, dtypes, byte ranges) is read with plain file I/O and compared with the meta
network. Keys of config.json that are not constructor arguments (the `architecture` key, a `colorlab` metadata
block, anything a later version adds) are ignored, as the Hub mixin's loader ignores them.
"""

from __future__ import annotations

import inspect
import json
import math
import struct
from pathlib import Path
from typing import Any

import torch

from models.base import ARCHITECTURE_KEY, ColorizationNet, check_tensor_shapes
from models.hub_files import CONFIG_NAME, WEIGHTS_NAME
from models.registry import architecture_class

# The paper's pix2pix U-Net (54 M) is the largest network ColorLab trains; 4x that is still a plausible model.
MAX_PARAMETERS = 250_000_000
# safetensors dtype names accepted for floating-point tensors; integers only where the network has integer buffers
# (BatchNorm's num_batches_tracked). int8/uint8 weights would load "successfully" as garbage.
FLOAT_DTYPES = {"F16": 2, "BF16": 2, "F32": 4}
INTEGER_DTYPES = {"I64": 8}
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit
# Ranges of constructor arguments by name; any other whole-number argument must lie in DEFAULT_INT_RANGE.
ARGUMENT_RANGES: dict[str, tuple[float, float]] = {
    "depth": (1, 12),  # a U-Net of depth 12 already needs 4096-px inputs
    "num_layers": (1, 64),
    "blocks_per_stage": (1, 16),
    "width": (1, 1024),
    "base_width": (1, 1024),
    "in_channels": (1, 1),  # the pipeline feeds L only
    "out_channels": (2, 2),  # and reads a and b back
    "dropout": (0.0, 1.0),
    "temperature": (0.01, 10.0),  # annealed-mean decoding of ab classes (models.ab_classes)
}
DEFAULT_INT_RANGE = (1, 4096)


def _fail(where: str, problem: str, fix: str = "re-save the model with ColorizationNet.save_pretrained") -> ValueError:
    return ValueError(f"{where} {problem}; {fix}.")


def _check_argument(where: str, name: str, value: Any, default: Any) -> None:
    """One constructor argument against the type of its default and the range for its name."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _fail(where, f"has {name}={value!r}, but it must be true or false")
        return
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(where, f"has {name}={value!r}, but it must be a whole number")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise _fail(where, f"has {name}={value!r}, but it must be a finite number")
    elif isinstance(default, str):
        if not isinstance(value, str) or len(value) > 100:
            raise _fail(where, f"has {name}={value!r}, but it must be a short text")
        return
    else:
        return  # an argument without a typed default: the constructor checks it
    low, high = ARGUMENT_RANGES.get(name, DEFAULT_INT_RANGE if isinstance(default, int) else (-math.inf, math.inf))
    if not low <= value <= high:
        raise _fail(where, f"has {name}={value!r}, outside the supported range {low:g} to {high:g}")


def constructor_arguments(model_class: type[ColorizationNet], config: dict[str, Any], where: str) -> dict[str, Any]:
    """The config entries the class's constructor takes, each type- and range-checked; other keys are ignored."""
    kwargs = {}
    for name, parameter in inspect.signature(model_class.__init__).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name in config:
            default = parameter.default if parameter.default is not parameter.empty else None
            _check_argument(where, name, config[name], default)
            kwargs[name] = config[name]
    return kwargs


def build_on_meta(model_class: type[ColorizationNet], kwargs: dict[str, Any], where: str) -> ColorizationNet:
    """The network with shapes but no storage: costs no memory however large the config asks for."""
    try:
        with torch.device("meta"):
            model = model_class(**kwargs)
    except (ValueError, TypeError, RuntimeError) as error:
        raise _fail(where, f"describes a {model_class.__name__} that cannot be built ({error})") from error
    count = sum(p.numel() for p in model.parameters())
    if count > MAX_PARAMETERS:
        raise _fail(
            where,
            f"describes a {model_class.__name__} with {count / 1e6:,.0f} M parameters, above the "
            f"{MAX_PARAMETERS / 1e6:.0f} M budget",
            "check its widths and depth",
        )
    return model


def read_safetensors_header(weights_file: Path) -> dict[str, dict[str, Any]]:
    """The tensor table of a safetensors file ({name: {dtype, shape, data_offsets}}), read without loading tensors."""
    where = str(weights_file)
    not_safetensors = "is not a safetensors file (corrupt, truncated, or a pickle renamed)"
    try:
        size = weights_file.stat().st_size
        with weights_file.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise _fail(where, not_safetensors)
            (length,) = struct.unpack("<Q", prefix)
            if length > min(MAX_HEADER_BYTES, size - 8):
                raise _fail(where, not_safetensors)
            raw = handle.read(length)
    except OSError as error:
        raise _fail(where, f"cannot be read ({error.strerror or error})", "check its permissions") from error
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _fail(where, not_safetensors) from error
    if not isinstance(header, dict):
        raise _fail(where, not_safetensors)
    header.pop("__metadata__", None)
    data_bytes = size - 8 - length
    for name, entry in header.items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("dtype"), str)
            and isinstance(entry.get("shape"), list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in entry["shape"])
            and isinstance(entry.get("data_offsets"), list)
            and len(entry["data_offsets"]) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in entry["data_offsets"])
        ):
            raise _fail(where, f"{not_safetensors}: the entry for {name!r} is malformed")
        begin, end = entry["data_offsets"]
        if not 0 <= begin <= end <= data_bytes:
            raise _fail(where, f"is truncated or corrupt: {name!r} lies outside the file")
    return header


def check_header_against(model: ColorizationNet, header: dict[str, dict[str, Any]], weights_file: Path) -> None:
    """Names, shapes, dtypes and byte sizes of the file against the (meta) network; nothing is loaded."""
    expected = model.state_dict()
    check_tensor_shapes(
        {name: entry["shape"] for name, entry in header.items()},
        {name: tensor.shape for name, tensor in expected.items()},
        where=str(weights_file),
        network=type(model).__name__,
        fix="the weights were saved by a different architecture or config",
        shape_fix="check config.json",
    )
    for name, entry in header.items():
        allowed = FLOAT_DTYPES if expected[name].is_floating_point() else INTEGER_DTYPES
        dtype = entry["dtype"]
        if dtype not in allowed:
            raise ValueError(
                f"{weights_file} stores {name!r} as {dtype}, but ColorLab weights must be "
                f"{'float16, bfloat16 or float32' if allowed is FLOAT_DTYPES else 'int64'}; "
                "re-save the model in one of those types."
            )
        begin, end = entry["data_offsets"]
        if end - begin != math.prod(entry["shape"]) * allowed[dtype]:
            raise ValueError(f"{weights_file} is corrupt: {name!r} has the wrong number of bytes; re-save the model.")


def check_model_folder(folder: Path, config: Any) -> tuple[type[ColorizationNet], dict[str, Any]]:
    """Validate config.json and model.safetensors of `folder` without allocating the network; returns what to build."""
    where = str(folder / CONFIG_NAME)
    if not isinstance(config, dict):
        raise _fail(where, f"holds a JSON {type(config).__name__}, not an object of settings")
    if ARCHITECTURE_KEY not in config:
        raise ValueError(
            f"{where} has no '{ARCHITECTURE_KEY}' key, so it is not a ColorLab model "
            "(save models with ColorizationNet.save_pretrained)."
        )
    name = config[ARCHITECTURE_KEY]
    if not isinstance(name, str):
        raise _fail(where, f"names the architecture {name!r}, which is not a class name")
    model_class = architecture_class(name)
    weights_file = folder / WEIGHTS_NAME
    if not weights_file.is_file():
        raise ValueError(f"{folder} has no {WEIGHTS_NAME}; ColorLab loads safetensors weights only, never pickles.")
    kwargs = constructor_arguments(model_class, config, where)
    meta_model = build_on_meta(model_class, kwargs, where)
    check_header_against(meta_model, read_safetensors_header(weights_file), weights_file)
    return model_class, kwargs


def check_finite(model: torch.nn.Module, folder: Path) -> None:
    """Refuse weights holding NaN or infinity: such a model only produces garbage (or crashes colorizing)."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(
                f"{folder / WEIGHTS_NAME} holds NaN or infinite values (first in {name!r}), so the model would "
                "only produce garbage; retrain it or restore an earlier checkpoint."
            )
