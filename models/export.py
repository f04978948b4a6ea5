"""Export a colorizer's network to ONNX, to run it with onnxruntime without torch or ColorLab.

    python -m models.export weights/colour_l1 --format onnx                            # -> colour_l1.onnx
    python -m models.export weights/colour_l1 --format onnx --int8 --calibration data/corpus/train
    colorlab-export user/colorizer --format onnx --out exports/colorizer.onnx           # a Hub id

The file holds the network only: normalised L in (`l_norm`, L / 50 - 1, shape (batch, 1, height, width)), normalised
ab out (`ab_norm`, ab / 110, shape (batch, 2, height, width)); batch, height and width are free (height and width
multiples of the network's size multiple, recorded in the file's metadata with the native working size). The
pipeline around it (working-size resize, guided upsampling of ab, Lab -> sRGB) stays in ColorLab; the model card's
"Run with ONNX Runtime" section shows the few numpy lines a user needs. Every export is checked on onnxruntime
against the PyTorch network at two batch sizes and shapes, and the largest |Δab| is printed.

`--int8` adds static int8 quantization (onnxruntime.quantization, QDQ format) of the convolutions, calibrated on a
few photos; the output convolution stays fp32 because the colour-class decoding sharpens its logits (quantizing it
moved ab by 10 units on average). Measured on the colour_classes model (trainer/configs/colour_classes.yaml;
benchmarks/bench_export.py, under load, one thread): int8 took 0.47x (batch 1) and 0.56x (batch 8) the CPU time
of the PyTorch fp32 network, its colours were 0.12 CIEDE2000 from fp32's on 16 validation photos, and its
CIEDE2000 to the photos went from 12.42 to 12.39.
Diffusion colorizers are a sampling loop over several networks and are refused.

The legacy TorchScript exporter (`torch.onnx.export(..., dynamo=False)`) is used: it needs only the `onnx` package,
while torch 2.13's default exporter also needs onnxscript. Install both runtimes with `pip install -e ".[export]"`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models.base import ColorizationNet
from models.color import AB_SCALE
from models.flags import FlagParser
from models.hub import load_model
from models.hub_files import DIFFUSION_MARKER, resolve_model_folder
from models.precision_quality import calibration_photos

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "l_norm", "ab_norm"
PARITY_LIMIT = 1e-3  # largest |Δab| (CIELAB ab units) an fp32 export may differ from the PyTorch network by


class ExportError(ValueError):
    """A model or option that cannot be exported, with the reason and the fix in one sentence."""


class _NetworkOnly(nn.Module):
    """forward(l_norm) -> ab_norm with no keyword options: the tracer would turn them into extra inputs."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return self.network(l_norm)


def _require(module: str, purpose: str) -> Any:
    try:
        return __import__(module)
    except ImportError as error:
        raise ExportError(
            f'{purpose} needs the {module} package, which is not installed; run pip install -e ".[export]".'
        ) from error


def example_side(model: ColorizationNet) -> int:
    """The side of the square traced: the native working size (256 if none), a multiple of the size multiple."""
    side = int(getattr(model, "native_working_size", None) or 256)
    multiple = int(getattr(model, "size_multiple", 1))
    return max(multiple, side // multiple * multiple)


def metadata(model: ColorizationNet) -> dict[str, str]:
    """What a user of the bare file needs to feed it right, stored as ONNX metadata_props."""
    return {
        "colorlab.architecture": type(model).__name__,
        "colorlab.input": f"{INPUT_NAME}: CIELAB L / 50 - 1, float32 (batch, 1, height, width)",
        "colorlab.output": f"{OUTPUT_NAME}: CIELAB ab / {AB_SCALE:g}, float32 (batch, 2, height, width)",
        "colorlab.size_multiple": str(int(getattr(model, "size_multiple", 1))),
        "colorlab.native_working_size": str(example_side(model)),
        "colorlab.config": json.dumps(model.hub_config(), sort_keys=True),
    }


def export_onnx(model: ColorizationNet, path: str | os.PathLike[str], *, opset: int = OPSET) -> Path:
    """Write `model` as ONNX (dynamic batch, height and width) to `path` atomically; returns the path."""
    onnx = _require("onnx", "ONNX export")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    side = example_side(model)
    example = torch.zeros(1, 1, side, side)
    dynamic = {0: "batch", 2: "height", 3: "width"}
    wrapped = _NetworkOnly(model).eval()
    with tempfile.TemporaryDirectory(prefix=".export-", dir=path.parent) as staging:
        draft = Path(staging) / path.name
        with warnings.catch_warnings():
            # The legacy exporter announces its deprecation, and the tracer warns that the networks' input-shape
            # checks become constants in the graph (they only raise on bad shapes, so nothing is lost).
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            warnings.filterwarnings("ignore", message=".*feature will be removed.*")
            torch.onnx.export(
                wrapped,
                (example,),
                str(draft),
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: dynamic, OUTPUT_NAME: dynamic},
                opset_version=opset,
                do_constant_folding=True,
            )
        proto = onnx.load(str(draft))
        for key, value in metadata(model).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, str(draft))
        os.replace(draft, path)
    return path


def onnx_session(path: str | os.PathLike[str], *, threads: int | None = None) -> Any:
    """An onnxruntime CPU session for an exported file."""
    ort = _require("onnxruntime", "Running an ONNX file")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def parity(model: ColorizationNet, path: str | os.PathLike[str], *, seed: int = 0) -> float:
    """Largest |Δab| (CIELAB ab units) between the ONNX file and the PyTorch network, at two batches and shapes
    that differ from the traced one (so dynamic axes are exercised too)."""
    session = onnx_session(path)
    multiple = int(getattr(model, "size_multiple", 1))
    generator = torch.Generator().manual_seed(seed)
    largest = 0.0
    for batch, height, width in ((1, 2, 3), (2, 3, 2)):
        shape = (batch, 1, multiple * max(height, 64 // multiple), multiple * max(width, 96 // multiple))
        # Smooth random lightness (noise at 1/8 size, upsampled), like a photograph: on per-pixel noise the
        # bundled L1 U-Net's own fp32 output is 3e-3 ab from its fp64 output, so noise measured fp32 rounding,
        # not the export (the ONNX output was as close to fp64 as PyTorch fp32 was; on photos both are ~2e-5).
        coarse = torch.rand((*shape[:2], shape[2] // 8, shape[3] // 8), generator=generator) * 2 - 1
        l_norm = torch.nn.functional.interpolate(coarse, size=shape[2:], mode="bilinear", align_corners=False)
        with torch.inference_mode():
            expected = model.eval()(l_norm).float().numpy()
        got = session.run([OUTPUT_NAME], {INPUT_NAME: l_norm.numpy()})[0]
        largest = max(largest, float(np.abs(got - expected).max()) * AB_SCALE)
    return largest


def quantize_int8(source: Path, target: Path, inputs: Sequence[np.ndarray]) -> Path:
    """Static int8 (QDQ) quantization of every convolution but the last, calibrated on `inputs`."""
    onnx = _require("onnx", "int8 quantization")
    _require("onnxruntime", "int8 quantization")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(inputs)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    with tempfile.TemporaryDirectory(prefix=".export-", dir=target.parent) as staging:
        prepared, draft = Path(staging) / "prepared.onnx", Path(staging) / target.name
        # onnxruntime's recommended first step (graph optimisation, shape inference); the symbolic pass cannot
        # follow the free height and width through the colour-class decoding, and ONNX's own inference suffices
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        nodes = onnx.load(str(prepared)).graph.node
        output_layer = [node.name for node in nodes if node.op_type in ("Conv", "ConvTranspose")][-1:]
        quantize_static(
            str(prepared),
            str(draft),
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=output_layer,  # stays fp32 (see the module docstring)
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        os.replace(draft, target)
    return target


def load_exportable(source: str, *, revision: str | None = None) -> ColorizationNet:
    """The network of a saved folder or Hub id; a diffusion colorizer is refused in one sentence."""
    folder = resolve_model_folder(source, revision=revision)
    if (folder / DIFFUSION_MARKER).is_file():
        raise ExportError(
            f"{source} is a diffusion colorizer (a sampling loop over a ControlNet, a U-Net and a VAE), which cannot "
            "be exported as one ONNX network; export one of the single-network colorizers (U-Net, pix2pix, baselines)."
        )
    model = load_model(folder)
    if model.takes_hints:
        # The exported graph has one input (L); a hint model's second input would be fixed at "no hints".
        raise ExportError(
            f"{source} is a hint model (it takes L and a colour-hint map), which this exporter does not support: the "
            "ONNX graph would silently drop the hints. Export an automatic colorizer, or serve the hint model in "
            "PyTorch (python -m models.colorize --hints)."
        )
    return model


def _calibration(folder: Path, side: int) -> list[np.ndarray]:
    """--calibration's photos as normalised L, or the one sentence saying what is wrong with the folder."""
    if not folder.is_dir():
        raise ExportError(f"--calibration {folder} is not a folder; pass a folder of a few typical photos.")
    inputs = calibration_photos(side, folder=folder)
    if not inputs:
        raise ExportError(f"--calibration {folder} holds no readable photos; pass a folder of a few typical photos.")
    return inputs


def build_parser() -> argparse.ArgumentParser:
    parser = FlagParser(
        prog="colorlab-export", description="Export a colorizer's network to ONNX (dynamic batch and size)."
    )
    parser.add_argument("model", help="a saved colorizer folder (e.g. weights/colour_l1) or a Hub id user/name")
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="the export format (only onnx today)")
    parser.add_argument("--out", type=Path, help="the file to write (default: MODEL_NAME.onnx in this folder)")
    parser.add_argument("--int8", action="store_true", help="also quantize the convolutions to int8 (static, QDQ)")
    parser.add_argument(
        "--calibration",
        type=Path,
        default=Path("data/corpus/train"),
        help="folder of photos that calibrate --int8 (default: data/corpus/train, the training split of the corpus)",
    )
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    parser.add_argument("--revision", help="Hub branch, tag or commit, for a Hub id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    name = Path(str(args.model).rstrip("/")).name or "colorizer"
    out = args.out or Path(f"{name}{'.int8' if args.int8 else ''}.onnx")
    try:
        model = load_exportable(args.model, revision=args.revision).eval()
        if not args.int8:
            export_onnx(model, out, opset=args.opset)
        else:
            calibration = _calibration(args.calibration, example_side(model))
            out.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".export-", dir=out.parent) as staging:
                fp32 = export_onnx(model, Path(staging) / "fp32.onnx", opset=args.opset)
                quantize_int8(fp32, out, calibration)
        difference = parity(model, out)
    except ValueError as error:  # ExportError, and the loader's sentences about the folder
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # an unwritable --out folder, a full disk
        print(f"error: could not write {out} ({error}); pass an --out in a writable folder.", file=sys.stderr)
        return 2
    size = out.stat().st_size / 1e6
    print(f"wrote {out} ({size:.1f} MB, opset {args.opset}{', int8 convolutions' if args.int8 else ''})")
    limit = "" if args.int8 else f" (fp32 limit {PARITY_LIMIT:g})"
    print(f"onnxruntime vs PyTorch: largest |Δab| {difference:.2g} CIELAB units{limit}")
    if not args.int8 and difference > PARITY_LIMIT:
        print(f"error: the export differs from the PyTorch network by more than {PARITY_LIMIT:g}.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
