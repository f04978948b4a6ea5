"""python benchmarks/bench_export.py [--model weights/colour_l1] [--photos 16] [--rounds 5]

ONNX export of a colorizer: speed of PyTorch vs onnxruntime fp32 vs onnxruntime int8 (static QDQ convolutions,
`python -m models.export --int8`), and what int8 does to the colours. Quality, scored by models.precision_quality
as the precision paths are: on the first --photos photos of the corpus' validation split (data/corpus/validation;
`python -m trainer.corpus build` makes it; scikit-image's photos without it), each resized to the model's native
working size, the CIEDE2000 colour difference between the int8 and the fp32 colours (L from the photo, ab from the
network), and each one's CIEDE2000 to the photo itself. int8 is calibrated on 8 photos of the training split (or
scikit-image's calibration photos), never on the photos it is scored on. Speed: batch 1 and 8 at the native working
size, variants run alternately in one process (median of --rounds; wall and process CPU), so a busy machine slows
them alike.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from models.export import (  # noqa: E402
    INPUT_NAME,
    OUTPUT_NAME,
    example_side,
    export_onnx,
    onnx_session,
    parity,
    quantize_int8,
)
from models.flags import FlagParser  # noqa: E402
from models.hub import load_model  # noqa: E402
from models.precision_paths import OnnxForward  # noqa: E402
from models.precision_quality import (  # noqa: E402
    calibration_photos,
    colour_distance,
    l_norm_of,
    score_network,
    validation_photos,
)


def main(argv: list[str] | None = None) -> None:
    parser = FlagParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="weights/colour_l1")
    parser.add_argument("--photos", type=int, default=16, help="validation photos scored")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {threads} thread(s); load average {load[0]:.1f} on {os.cpu_count()} cores")
    model = load_model(args.model).eval()
    side = example_side(model)
    photos, source = validation_photos(args.photos)
    with tempfile.TemporaryDirectory(prefix="colorlab-bench-export-") as tmp:
        fp32 = export_onnx(model, Path(tmp) / "fp32.onnx")
        int8 = quantize_int8(fp32, Path(tmp) / "int8.onnx", calibration_photos(side))
        sizes = {name: path.stat().st_size / 1e6 for name, path in (("fp32", fp32), ("int8", int8))}
        print(f"{args.model}: fp32 {sizes['fp32']:.1f} MB, int8 {sizes['int8']:.1f} MB; working size {side} px")
        print(f"parity, largest |Δab| vs PyTorch: fp32 {parity(model, fp32):.2g}, int8 {parity(model, int8):.2g}")
        sessions = {"onnx fp32": onnx_session(fp32, threads=threads), "onnx int8": onnx_session(int8, threads=threads)}

        # scored like models.precision's paths: each photo at side x side, L from the photo, ab from the network
        scores = {name: score_network(OnnxForward(session), photos, side) for name, session in sessions.items()}
        s32, s8 = scores["onnx fp32"], scores["onnx int8"]
        per_photo = [colour_distance([a], [b]) for a, b in zip(s8["lab"], s32["lab"], strict=True)]
        print(
            f"\nquality on {source} at {side} px (mean CIEDE2000 per photo, then mean):\n"
            f"  int8 vs fp32: {colour_distance(s8['lab'], s32['lab']):.3f} (largest photo {max(per_photo):.3f})\n"
            f"  to the photo: fp32 {s32['ciede2000']:.3f}, int8 {s8['ciede2000']:.3f} "
            f"(change {s8['ciede2000'] - s32['ciede2000']:+.3f}); ab-AuC change {s8['ab_auc'] - s32['ab_auc']:+.4f}"
        )
        inputs = [l_norm_of(photo, side).numpy() for photo in photos]

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
