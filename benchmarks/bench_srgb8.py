"""python benchmarks/bench_srgb8.py [--rounds 7] [--size 4000x3000] [--model weights/colour_l1] [--threads 2]

The full-resolution output stage, Lab -> 8-bit sRGB with the constant-L gamut fit, before and after the two-core
version of `models.color.lab_to_srgb8`, on a 12-MP prediction of a bundled colorizer (coffee upscaled, as
benchmarks/bench_inference.py), at the predicted saturation and at 2.5x (many more pixels out of gamut).

"before" is the previous implementation, kept in tests/srgb8_reference.py. Variants run alternately in one process
(round-robin, --rounds times, the first round dropped), so a busy machine slows them alike and the ratios hold
while the absolute figures do not; each line gives the median wall time, the median process CPU time, and the
ratio to "before" on the same thread count. The CPU time is the better figure on a loaded machine. The glibc
malloc settings and OMP_WAIT_POLICY=PASSIVE are applied as in bench_inference.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import bench_support

bench_support.use_serving_environment()  # before torch loads OpenMP and malloc settles

import torch  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere
sys.path.insert(0, str(ROOT / "tests"))  # the previous implementation lives with the test that compares to it

from srgb8_reference import reference_lab_to_srgb8  # noqa: E402

from models.color import AB_SCALE, _inside_gamut, _lab_to_linear_rgb, lab_to_srgb8, normalize_l  # noqa: E402
from models.flags import FlagParser  # noqa: E402
from models.hub import load_colorizer  # noqa: E402
from models.pipeline import prepare_image  # noqa: E402
from models.upsample import guided_upsample  # noqa: E402


def predicted_lab(model: str, size: tuple[int, int], saturation: float) -> torch.Tensor:
    """Full-resolution L of coffee upscaled to `size` plus the model's guided-upsampled ab, as the pipeline has it."""
    import skimage.data

    photo = Image.fromarray(skimage.data.coffee())
    crop = round(photo.height * size[0] / size[1])
    left = (photo.width - crop) // 2
    big = photo.crop((left, 0, left + crop, photo.height)).resize(size, Image.BICUBIC)
    colorizer = load_colorizer(model)
    prepared = prepare_image(big)
    small = colorizer.working_lightness(prepared, None)
    ab_norm = colorizer.predict_ab(normalize_l(small))
    ab_full = guided_upsample(small / 100.0, ab_norm * (AB_SCALE * saturation), prepared.lightness / 100.0)
    return torch.cat([prepared.lightness, ab_full], dim=1)[0].contiguous()


def main(argv: list[str] | None = None) -> None:
    parser = FlagParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (each variant once per round)")
    parser.add_argument("--size", default="4000x3000", help="image size WxH (default 4000x3000, 12 MP)")
    parser.add_argument("--model", default="weights/colour_l1", help="colorizer whose prediction is converted")
    parser.add_argument("--threads", type=int, help="threads of the multi-threaded figures (default: torch's count)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    size = tuple(int(side) for side in args.size.lower().split("x"))
    threads = torch.get_num_threads()
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {threads} threads, OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY')}")
    print(f"load average {load[0]:.1f} (1 min) / {load[1]:.1f} (5 min) on {os.cpu_count()} cores", flush=True)
    for saturation in (1.0, 2.5):
        lab = predicted_lab(args.model, size, saturation)
        outside = float((~_inside_gamut(_lab_to_linear_rgb(lab), 1e-3)).float().mean())
        before, after = reference_lab_to_srgb8(lab), lab_to_srgb8(lab)
        differing = float((before != after).any(dim=-1).float().mean())
        largest = int((before.to(torch.int16) - after.to(torch.int16)).abs().max())
        print(
            f"\n{args.model} on {size[0]}x{size[1]}, saturation {saturation}: {100 * outside:.2f}% of pixels out of "
            f"gamut; after vs before: {100 * differing:.4f}% of pixels differ, by at most {largest} level(s)"
        )
        variants: dict[str, Callable[[], object]] = {}
        for count in sorted({1, threads}):

            def before_run(count: int = count, lab: torch.Tensor = lab) -> None:
                previous = torch.get_num_threads()
                torch.set_num_threads(count)  # the previous version used torch's intra-op threads only
                try:
                    reference_lab_to_srgb8(lab)
                finally:
                    torch.set_num_threads(previous)

            variants[f"before, {count} thread(s)"] = before_run
            variants[f"after, {count} thread(s)"] = lambda count=count, lab=lab: lab_to_srgb8(lab, threads=count)
        figures = bench_support.alternate(variants, args.rounds)
        for name, (wall, cpu) in figures.items():
            base_wall, base_cpu = figures["before, " + name.split(", ")[1]]
            print(
                f"  {name:21s} {wall:7.3f} s wall ({wall / base_wall:4.2f}x before)  "
                f"{cpu:7.3f} s CPU ({cpu / base_cpu:4.2f}x before)",
                flush=True,
            )
    load = os.getloadavg()
    print(f"\nend: load average {load[0]:.1f} (1 min) / {load[1]:.1f} (5 min)")


if __name__ == "__main__":
    main()
