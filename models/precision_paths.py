"""The ways a ColorLab network can run its forward pass on a CPU, each applied to the network in place.

    network = prepare_network(load_model("weights/colour_l1"), "bf16")   # then network(l_norm) as before

| path | what it does | output vs fp32 eager |
|---|---|---|
| `fp32` | the network as trained (plain eager fp32): the reference | identical |
| `channels_last` | weights in NHWC memory order (oneDNN's preferred layout for convolutions) | fp32 rounding (~1e-6) |
| `folded_bn` | BatchNorm folded into the convolution before it (`models.bn_fold`), NHWC | fp32 rounding (~1e-6) |
| `bf16` | `folded_bn` with weights, activations in bfloat16 (8 mantissa bits), fp32 out | ~1e-2 in ab_norm |
| `compile` | `folded_bn` via `torch.compile` (inductor); compiles again for each new input shape | fp32 rounding |
| `int8` | ONNX Runtime, convolutions quantized to int8 (static, calibrated; `models.export`) | ~1e-2 in ab_norm |

bf16 is offered only where the CPU has bfloat16 instructions (AVX-512 BF16 or AMX, `cpu_supports_bf16`); without
them bf16 is emulated and slower than fp32. bf16 casts the weights once instead of using autocast, which casts
every weight again on every call (for the 54 M-parameter pix2pix that is 200 MB of conversion per image). int8
needs onnxruntime and onnx (`pip install -e ".[export]"`) and a network without hint inputs (the exported file takes
L only). A prepared network is for inference only: its BatchNorms are gone and its weights may be cast, so it must
not be trained or saved.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.bn_fold import fold_batchnorm
from models.cpu_peak import read_cpu_info

PATHS = ("fp32", "channels_last", "folded_bn", "bf16", "compile", "int8")
REFERENCE = "fp32"


class PrecisionError(ValueError):
    """A path this machine or model cannot run, in one sentence with the fix."""


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags from /proc/cpuinfo (empty where it does not exist, e.g. macOS)."""
    return read_cpu_info().flags


def cpu_supports_bf16() -> bool:
    """True when this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX-BF16) and torch's oneDNN can use it.
    Detected, never assumed: on a CPU without these instructions bf16 measured slower than fp32."""
    flags = cpu_flags()
    hardware = "avx512_bf16" in flags or "amx_bf16" in flags
    mkldnn = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return hardware and (mkldnn is None or bool(mkldnn()))


def cpu_description() -> str:
    """The CPU's model name and the instruction sets that matter here, e.g. 'AMD EPYC 9R14 (AVX512, bf16 yes)'."""
    name = read_cpu_info().model_name or "unknown CPU"
    capability = torch.backends.cpu.get_cpu_capability()
    return f"{name} ({capability}, bf16 {'yes' if cpu_supports_bf16() else 'no'})"


def unavailable_reason(model: nn.Module, path: str) -> str | None:
    """Why `path` cannot run for `model` on this machine (one sentence), or None when it can."""
    if path not in PATHS:
        return f"{path!r} is not a precision path; choose one of {', '.join(PATHS)}."
    if path == "bf16" and not cpu_supports_bf16():
        return (
            "this CPU has no bfloat16 instructions (AVX-512 BF16 or AMX), so bf16 would be emulated and slower "
            "than fp32; use --precision fp32 or auto."
        )
    if path == "int8":
        if getattr(model, "takes_hints", False):
            return "the int8 path runs an ONNX file that takes L only, and this model also takes colour hints."
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError:
            return 'the int8 path needs onnxruntime and onnx, which are not installed; run pip install -e ".[export]".'
    return None


def _contiguous_output(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
    # channels_last convolutions hand back NHWC strides; callers (guided upsampling, numpy) expect NCHW
    return output.float().contiguous()


def _to_bf16_inputs(_module: nn.Module, inputs: tuple) -> tuple:
    return tuple(x.to(torch.bfloat16) if torch.is_tensor(x) and x.is_floating_point() else x for x in inputs)


class OnnxForward:
    """forward(l_norm) through an onnxruntime session: torch (B, 1, H, W) in, torch (B, 2, H, W) fp32 out."""

    def __init__(self, session: object) -> None:
        self.session = session

    def __call__(self, l_norm: torch.Tensor, hint_map: torch.Tensor | None = None) -> torch.Tensor:
        from models.export import INPUT_NAME, OUTPUT_NAME

        feed = {INPUT_NAME: np.ascontiguousarray(l_norm.detach().float().cpu().numpy())}
        return torch.from_numpy(self.session.run([OUTPUT_NAME], feed)[0])


def smooth_calibration(model: nn.Module, count: int = 8, seed: int = 0) -> list[np.ndarray]:
    """Photo-like inputs for int8 calibration when no photos are at hand: smooth random lightness (noise at 1/8
    size, upsampled), at the network's native working size."""
    from models.export import example_side

    side = example_side(model)
    generator = torch.Generator().manual_seed(seed)
    inputs = []
    for _ in range(count):
        coarse = torch.rand((1, 1, max(1, side // 8), max(1, side // 8)), generator=generator) * 2 - 1
        inputs.append(nn.functional.interpolate(coarse, size=(side, side), mode="bilinear").numpy())
    return inputs


def int8_session(model: nn.Module, calibration: Sequence[np.ndarray]) -> object:
    """An onnxruntime session of `model` with int8 convolutions (models.export's static QDQ quantization)."""
    from models.export import export_onnx, onnx_session, quantize_int8

    with tempfile.TemporaryDirectory(prefix="colorlab-int8-") as folder:
        fp32 = export_onnx(model, Path(folder) / "fp32.onnx")
        int8 = quantize_int8(fp32, Path(folder) / "int8.onnx", calibration)
        session = onnx_session(int8, threads=torch.get_num_threads())  # reads the file now; it may then go
        os.remove(int8)
    return session


def prepare_network(model: nn.Module, path: str, *, calibration: Sequence[np.ndarray] | None = None) -> nn.Module:
    """Make `model` (in eval mode, on the CPU for every path but fp32) run its forward by `path`, in place; returns
    it. `calibration` (normalised L arrays, (1, 1, H, W)) calibrates int8; smooth random lightness if None."""
    reason = unavailable_reason(model, path)
    if reason is not None:
        raise PrecisionError(f"Cannot use precision {path}: {reason}")
    current = getattr(model, "colorlab_precision", REFERENCE)
    if current != REFERENCE:
        raise PrecisionError(f"This network already runs as {current}; load it again to prepare it as {path}.")
    model.eval()
    if path == "int8":
        model.forward = OnnxForward(int8_session(model, calibration or smooth_calibration(model)))
    elif path != REFERENCE:
        if path != "channels_last":
            fold_batchnorm(model)
        model.to(memory_format=torch.channels_last)
        model.register_forward_hook(_contiguous_output)
        if path == "bf16":
            model.to(torch.bfloat16)
            model.register_forward_pre_hook(_to_bf16_inputs)
        elif path == "compile":
            # dynamic=False: one specialised graph per input shape (what inductor makes fastest on CPU); each new
            # shape compiles again, which is why `auto` never picks this path (models.precision)
            model.forward = torch.compile(model.forward, dynamic=False)
    model.colorlab_precision = path
    return model
