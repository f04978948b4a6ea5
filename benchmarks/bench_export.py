"""python benchmarks/bench_export.py [--model weights/colour_l1] [--photos 16] [--rounds 5]

ONNX export of a colorizer: speed of PyTorch vs onnxruntime fp32 vs onnxruntime int8 (static QDQ convolutions,
`python -m models.export --int8`), and what int8 does to the colours. Quality: on the first --photos photos of the
corpus' validation split (data/corpus/validation; `python -m trainer.corpus build` makes it), each resized to the
model's native working size, the CIEDE2000 colour difference between the int8 and the fp32 prediction (L from the
photo, ab from the network), and each one's CIEDE2000 to the photo itself. int8 is calibrated on 8 photos of the
training split, never on the photos it is scored on. Speed: batch 1 and 8 at the native working size, variants run
alternately in one process (median of --rounds; wall and process CPU), so a busy machine slows them alike.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import bench_support

bench_support.use_serving_environment()  # before torch loads OpenMP and malloc settles

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from skimage.color import deltaE_ciede2000, lab2rgb, rgb2lab  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from models.color import AB_SCALE, denormalize_l, lightness_from_srgb8, normalize_l  # noqa: E402
from models.export import (  # noqa: E402
    INPUT_NAME,
    OUTPUT_NAME,
    calibration_inputs,
    example_side,
    export_onnx,
    onnx_session,
    parity,
    quantize_int8,
)
from models.flags import FlagParser  # noqa: E402
from models.hub import load_model  # noqa: E402

CORPUS = Path("data/corpus")


def lab_of(l_norm: np.ndarray, ab_norm: np.ndarray) -> np.ndarray:
    """(1, 1, H, W) normalised L + (1, 2, H, W) normalised ab -> (H, W, 3) CIELAB, pulled into sRGB (as shown)."""
    lab = np.concatenate([denormalize_l(torch.from_numpy(l_norm)).numpy(), ab_norm * AB_SCALE], axis=1)[0]
    return rgb2lab(lab2rgb(lab.transpose(1, 2, 0).astype(np.float64)))


def main(argv: list[str] | None = None) -> None:
    parser = FlagParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="weights/colour_l1")
    parser.add_argument("--photos", type=int, default=16, help="validation photos scored")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore", message="Conversion from CIE-LAB")  # impossible colours get clipped, as shown
    threads = torch.get_num_threads()
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {threads} thread(s); load average {load[0]:.1f} on {os.cpu_count()} cores")
    model = load_model(args.model).eval()
    side = example_side(model)
    with tempfile.TemporaryDirectory(prefix="colorlab-bench-export-") as tmp:
        fp32 = export_onnx(model, Path(tmp) / "fp32.onnx")
        int8 = quantize_int8(fp32, Path(tmp) / "int8.onnx", calibration_inputs(CORPUS / "train", side))
        sizes = {name: path.stat().st_size / 1e6 for name, path in (("fp32", fp32), ("int8", int8))}
        print(f"{args.model}: fp32 {sizes['fp32']:.1f} MB, int8 {sizes['int8']:.1f} MB; working size {side} px")
        print(f"parity, largest |Δab| vs PyTorch: fp32 {parity(model, fp32):.2g}, int8 {parity(model, int8):.2g}")
        sessions = {"onnx fp32": onnx_session(fp32, threads=threads), "onnx int8": onnx_session(int8, threads=threads)}

        inputs = []
        to_fp32, to_truth_fp32, to_truth_int8 = [], [], []
        photos = sorted(p for p in (CORPUS / "validation").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        for path in photos[: args.photos]:
            rgb = np.asarray(Image.open(path).convert("RGB").resize((side, side), resample=3))
            truth = rgb2lab(rgb / 255.0)
            l_norm = normalize_l(lightness_from_srgb8(rgb)).numpy()[None, None]
            inputs.append(l_norm)
            ab32 = sessions["onnx fp32"].run([OUTPUT_NAME], {INPUT_NAME: l_norm})[0]
            ab8 = sessions["onnx int8"].run([OUTPUT_NAME], {INPUT_NAME: l_norm})[0]
            lab32, lab8 = lab_of(l_norm, ab32), lab_of(l_norm, ab8)
            to_fp32.append(float(deltaE_ciede2000(lab8, lab32).mean()))
            to_truth_fp32.append(float(deltaE_ciede2000(lab32, truth).mean()))
            to_truth_int8.append(float(deltaE_ciede2000(lab8, truth).mean()))
        print(
            f"\nquality on {len(to_fp32)} validation photos at {side} px (mean CIEDE2000 per photo, then mean):\n"
            f"  int8 vs fp32: {np.mean(to_fp32):.3f} (largest photo {max(to_fp32):.3f})\n"
            f"  to the photo: fp32 {np.mean(to_truth_fp32):.3f}, int8 {np.mean(to_truth_int8):.3f} "
            f"(change {np.mean(to_truth_int8) - np.mean(to_truth_fp32):+.3f})"
        )

        print(f"\nspeed at {side} px, median of {args.rounds} alternating rounds:")
        for batch in (1, 8):
            l_norm = np.concatenate([inputs[i % len(inputs)] for i in range(batch)])
            tensor = torch.from_numpy(l_norm)

            def eager(tensor: torch.Tensor = tensor) -> None:
                with torch.inference_mode():
                    model(tensor)

            variants: dict[str, Callable[[], object]] = {"pytorch fp32": eager}
            for name, session in sessions.items():
                feed = {INPUT_NAME: l_norm}
                variants[name] = lambda session=session, feed=feed: session.run([OUTPUT_NAME], feed)
            figures = bench_support.alternate(variants, args.rounds)
            base_wall, base_cpu = figures["pytorch fp32"]
            for name, (wall, cpu) in figures.items():
                print(
                    f"  batch {batch} {name:13s} {1000 * wall / batch:7.1f} ms/img wall ({wall / base_wall:4.2f}x)  "
                    f"{1000 * cpu / batch:7.1f} ms/img CPU ({cpu / base_cpu:4.2f}x)",
                    flush=True,
                )
    load = os.getloadavg()
    print(f"\nend: load average {load[0]:.1f}")


if __name__ == "__main__":
    main()
