"""python benchmarks/bench_evaluate.py [--images 100] [--size 256] [--models pix2pix_unet256 unet resunet]

Seconds for `python -m judge.evaluate` to score N images at SIZE px for three colorizers (plus the
grayscale baseline it always adds), split into model inference and metric computation, and printed as a
markdown snippet for the README. The models have random weights (speed does not depend on them) and are
saved and loaded in Hub format, so the timed path is the real command's: dataset -> Colorizer.colorize_batch
-> metrics -> report files. Images are deterministic crops of photographs shipped with scikit-image and
scikit-learn. Run with the Makefile's malloc settings (MALLOC_MMAP_THRESHOLD_ etc.) for representative
figures; other processes on the machine inflate them.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from judge import evaluate
from models.flags import FlagParser
from models.registry import create_model


def source_photos() -> list[np.ndarray]:
    """Real colour photographs that ship inside installed packages (no download)."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = [getattr(skimage.data, name)() for name in ("astronaut", "chelsea", "coffee", "rocket", "retina")]
    photos += list(skimage.data.stereo_motorcycle()[:2])
    photos += list(load_sample_images().images)
    return [p[..., :3] for p in photos]


def write_crops(folder: Path, count: int, seed: int = 0) -> None:
    """`count` square crops (40-100% of the short side, random position) as PNGs: a local image folder dataset."""
    rng = np.random.default_rng(seed)
    photos = source_photos()
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        photo = photos[index % len(photos)]
        height, width = photo.shape[:2]
        side = int(min(height, width) * rng.uniform(0.4, 1.0))
        top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
        Image.fromarray(photo[top : top + side, left : left + side]).save(folder / f"crop_{index:03d}.png")


def main() -> None:
    parser = FlagParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--models", nargs="+", default=["pix2pix_unet256", "unet", "resunet"])
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as tmp:
        root = Path(tmp)
        write_crops(root / "photos", args.images)
        specs = []
        for variant in args.models:
            create_model(variant).save_pretrained(root / variant)
            specs.append(str(root / variant))
        argv = ["--models", *specs, "--dataset", str(root / "photos"), "--out", str(root / "report")]
        argv += ["--image_size", str(args.size), "--working_size", str(args.size), "--no_progress"]
        began, began_cpu = time.perf_counter(), time.process_time()
        evaluate.run(evaluate.parse_args(argv))
        total, total_cpu = time.perf_counter() - began, time.process_time() - began_cpu
        report = json.loads((root / "report" / "report.json").read_text())
    seconds = report["seconds"]
    inference, metrics, inference_cpu, metrics_cpu = (
        sum(s[key] for s in seconds.values()) for key in ("inference", "metrics", "inference_cpu", "metrics_cpu")
    )
    rows = [
        f"| {name} | {s['inference']:.1f} | {s['metrics']:.1f} | {s['inference_cpu']:.1f} | {s['metrics_cpu']:.1f} |"
        for name, s in seconds.items()
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        "\n".join(
            [
                f"Evaluation speed: {report['n_images']} images at {args.size} px, {len(args.models)} models + the "
                f"grayscale baseline, `python -m judge.evaluate` on {os.cpu_count()} CPU cores "
                f"({platform.processor() or platform.machine()}, torch {torch.__version__}, "
                f"{torch.get_num_threads()} threads, load average {load:.1f} at the end):",
                "",
                "| model | inference (s) | metrics (s) | inference (CPU s) | metrics (CPU s) |",
                "|---|---|---|---|---|",
                *rows,
                f"| **total** | **{inference:.1f}** | **{metrics:.1f}** | **{inference_cpu:.1f}** | "
                f"**{metrics_cpu:.1f}** |",
                "",
                f"Whole command: {total:.1f} s wall, {total_cpu:.1f} s CPU ({total / report['n_images']:.2f} s per "
                f"image for all rows). Metrics cost {metrics_cpu / inference_cpu:.0%} of the models' inference in CPU "
                f"time ({metrics / inference:.0%} in wall time); per image and row they take "
                f"{metrics_cpu / (report['n_images'] * len(seconds)) * 1000:.0f} ms of CPU. Inference includes the "
                "pipeline's full-resolution recombination (guided upsampling, gamut fitting), which is all the "
                "grayscale row costs. LPIPS and FID are not included: they need ImageNet weights.",
            ]
        )
    )


if __name__ == "__main__":
    main()
