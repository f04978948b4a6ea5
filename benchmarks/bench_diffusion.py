"""python benchmarks/bench_diffusion.py [--sizes 64 128] [--steps 20] [--base_model PATH] [--device cuda]

Seconds per colourised image for the ControlNet diffusion colorizer: the whole `colorize` call
(decode, L, sampling, VAE decode, full-resolution recombination) at each working size.

Without `--base_model` it times the tiny in-code model (`controlnet_tiny`, random weights): that is a
cost figure for tests and CPU demos, not for a useful colorizer. A Stable Diffusion 1.5 figure needs
its pretrained weights and a GPU: `--base_model path/to/stable-diffusion-v1-5 --device cuda --sizes 512`.
Prints a line per configuration: median and minimum over `--repeats` runs after one warm-up run.
Run it through `make bench` (or with the Makefile's MALLOC_* settings exported): they matter 2-4x here.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from skimage import data as skimage_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from models.diffusion import DiffusionColorizer, create_diffusion_components
from models.diffusion_tiny import TINY_BASE_MODEL
from models.flags import FlagParser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = FlagParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="working sizes in pixels")
    parser.add_argument("--steps", type=int, default=20, help="num_inference_steps")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 4], help="samples drawn per call")
    parser.add_argument("--scheduler", default="unipc", choices=["unipc", "ddim"])
    parser.add_argument("--base_model", default=TINY_BASE_MODEL, help="'tiny' or a Stable Diffusion folder / Hub id")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return parser.parse_args(argv)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_colorize(
    colorizer: DiffusionColorizer, image: Image.Image, *, repeats: int, **sampling: object
) -> tuple[list[float], list[float]]:
    """(wall seconds, process CPU seconds) of each call; CPU time is the steadier figure on a shared machine."""
    colorizer.colorize_samples(image, **{**sampling, "num_inference_steps": 2})  # warm-up: kernels, allocator
    wall, cpu = [], []
    for _ in range(repeats):
        _synchronize(colorizer.device)
        start, start_cpu = time.perf_counter(), time.process_time()
        colorizer.colorize_samples(image, **sampling)
        _synchronize(colorizer.device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def main(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    components = create_diffusion_components(args.base_model)
    colorizer = DiffusionColorizer(components, device=device, dtype=dtype)
    photo = Image.fromarray(skimage_data.astronaut())  # 512x512 real photo; the working size is what varies
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'CPU'}"
    print(
        f"diffusion colorizer benchmark: base {args.base_model}, {args.scheduler} {args.steps} steps, empty prompt, "
        f"device {device} ({where}), {torch.get_num_threads()} torch threads, {str(dtype).removeprefix('torch.')}"
    )
    if hasattr(os, "getloadavg"):
        print(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared: wall varies)")
    for size in args.sizes:
        for samples in args.samples:
            wall, cpu = time_colorize(
                colorizer,
                photo,
                repeats=args.repeats,
                working_size=size,
                num_samples=samples,
                num_inference_steps=args.steps,
                scheduler=args.scheduler,
                seed=0,
            )
            median = statistics.median(wall)
            print(
                f"{size:4d} px, {samples} sample(s) per call: {median:7.2f} s per call (min {min(wall):.2f}), "
                f"{median / samples:6.2f} s per colouring; CPU time {statistics.median(cpu) / samples:6.2f} s each",
                flush=True,
            )
    if not torch.cuda.is_available():
        print(
            "No GPU in this environment: the Stable Diffusion 1.5 figure (512 px, pretrained weights) is not "
            "measured; run with --base_model PATH_TO_SD15 --device cuda --sizes 512 on a GPU machine."
        )


if __name__ == "__main__":
    main(parse_args())
