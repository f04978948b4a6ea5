"""python benchmarks/bench_inference.py [--models NAME ...] [--runs 5] [--skip_models] [--skip_e2e]
                                       [--e2e_model MODEL] [--e2e_precision fp32|bf16|int8|auto]
                                       [--e2e_working_size 256|auto]

Inference speed on this machine, printed as markdown tables for the README:

1. Network forward at 256 px for every registered full-size model (not *_tiny), batch 1 and 8:
   ms per image and images per second (eval mode, torch.inference_mode, warm-up, median of --runs);
   pix2pix generators also in channels_last memory format.
2. End to end on a 12-megapixel photo (4000x3000 JPEG made from a scikit-image photo in a temp dir):
   decode JPEG -> full-res L -> network at 256 -> guided upsample of ab -> Lab to sRGB -> encode JPEG q95,
   with a per-stage breakdown, for a black-and-white (L) and a colour (RGB) JPEG. The Lab -> sRGB stage is also
   timed with its previous implementation (tests/srgb8_reference.py, one core's worth of intra-op threads and a
   per-band gamut fit) as "before"; benchmarks/bench_srgb8.py compares the two in more detail.
   `--e2e_precision` runs the network on a precision path (models.precision), `--e2e_working_size auto` at the
   model's native size (what the CLI and the app use by default).

Registry models have random weights: forward speed does not depend on them, but the gamut-fit stage
does (it grows with the share of out-of-gamut predictions, printed), so `--e2e_model weights/NAME`
also times a trained model. Nothing here measures quality. The glibc malloc
settings measured 2-4x faster must be in the environment before the process starts, so the script
re-executes itself with them when they are missing (and with OMP_WAIT_POLICY=PASSIVE unless set, as
the CLI does). Other processes on the 2 cores inflate the figures: the load average is printed next to
them, with each stage's process CPU time.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import bench_support

bench_support.use_serving_environment()  # before torch loads OpenMP and malloc settles

import torch  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the previous Lab -> sRGB, for "before"

from srgb8_reference import reference_lab_to_srgb8  # noqa: E402

from models.color import AB_SCALE, lab_to_srgb8, normalize_l  # noqa: E402
from models.flags import FlagParser  # noqa: E402
from models.imageio import open_image  # noqa: E402
from models.options import parse_working_size  # noqa: E402
from models.pipeline import Colorizer, NetworkColorizer, prepare_image  # noqa: E402
from models.precision import apply_precision  # noqa: E402
from models.precision_options import PRECISION_CHOICES  # noqa: E402
from models.registry import create_model, is_model, list_models  # noqa: E402
from models.upsample import guided_upsample  # noqa: E402

WORKING_SIZE = 256
E2E_SIZE = (4000, 3000)


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def timed(fn: Callable[[], object], *, runs: int, warmup: int = 1) -> tuple[float, float]:
    """Median wall seconds and median process CPU seconds of `runs` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


# --- 1. network forward -------------------------------------------------------------------------


def bench_forward(names: list[str], runs: int) -> list[dict[str, object]]:
    rows = []
    for name in names:
        torch.manual_seed(0)
        model = create_model(name).eval()
        variants = [("contiguous", torch.contiguous_format)]
        if name.startswith("pix2pix"):
            variants.append(("channels_last", torch.channels_last))
        for label, memory_format in variants:
            model = model.to(memory_format=memory_format)
            for batch in (1, 8):
                inputs = torch.rand(batch, 1, WORKING_SIZE, WORKING_SIZE).mul_(2).sub_(1)
                inputs = inputs.contiguous(memory_format=memory_format)

                def forward(model=model, inputs=inputs) -> None:
                    with torch.inference_mode():
                        model(inputs)

                wall, cpu = timed(forward, runs=runs, warmup=2)
                row = {
                    "model": name,
                    "params_m": model.num_parameters() / 1e6,
                    "layout": label,
                    "batch": batch,
                    "ms_per_img": 1000 * wall / batch,
                    "img_per_s": batch / wall,
                    "cpu_s": cpu,
                }
                rows.append(row)
                print(
                    f"  {name:22s} {label:13s} batch {batch}: {row['ms_per_img']:8.1f} ms/img "
                    f"{row['img_per_s']:7.2f} img/s  ({wall:.3f} s wall, {cpu:.3f} s CPU per batch)",
                    flush=True,
                )
    return rows


def forward_table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| model | params | layout | batch 1 ms/img | batch 1 img/s | batch 8 ms/img | batch 8 img/s |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    keyed = {(r["model"], r["layout"], r["batch"]): r for r in rows}
    for model, layout in dict.fromkeys((r["model"], r["layout"]) for r in rows):
        one, eight = keyed[(model, layout, 1)], keyed[(model, layout, 8)]
        lines.append(
            f"| {model} | {one['params_m']:.1f} M | {layout} | {one['ms_per_img']:.0f} | {one['img_per_s']:.1f} "
            f"| {eight['ms_per_img']:.0f} | {eight['img_per_s']:.1f} |"
        )
    return "\n".join(lines)


# --- 2. end to end on 12 MP -----------------------------------------------------------------------


def make_12mp_jpegs(folder: Path) -> dict[str, Path]:
    """coffee (600x400), centre-cropped to 4:3 and upscaled to 4000x3000, saved as colour and B&W JPEG q95."""
    import skimage.data

    photo = Image.fromarray(skimage.data.coffee())
    crop = round(photo.height * 4 / 3)
    left = (photo.width - crop) // 2
    big = photo.crop((left, 0, left + crop, photo.height)).resize(E2E_SIZE, Image.BICUBIC)
    paths = {"B&W JPEG (L)": folder / "photo_12mp_gray.jpg", "colour JPEG (RGB)": folder / "photo_12mp_rgb.jpg"}
    big.convert("L").save(paths["B&W JPEG (L)"], quality=95)
    big.save(paths["colour JPEG (RGB)"], quality=95)
    return paths


def encode_jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def load_e2e_colorizer(source: str) -> Colorizer:
    """A registry name (random weights) or a saved model folder / Hub id (e.g. the bundled weights/pix2pix)."""
    if is_model(source):
        torch.manual_seed(0)
        return NetworkColorizer(create_model(source), name=source)
    from models.hub import load_colorizer

    return load_colorizer(source)


def out_of_gamut_fraction(lab: torch.Tensor) -> float:
    """Share of pixels whose predicted colour needs the gamut fit (its cost grows with it)."""
    exact = lab_to_srgb8(lab, fit_gamut=False)
    return float((exact != lab_to_srgb8(lab)).any(dim=-1).float().mean())


def bench_end_to_end(
    source: str, runs: int, *, precision: str = "fp32", working_size: int | None = WORKING_SIZE
) -> list[tuple[str, str, float, float]]:
    """Rows of (input, stage, median wall s, median CPU s); stage 'total' is the real one-call path.

    `precision` is a models.precision path (fp32, bf16, int8, or auto: the recorded choice); `working_size` None is
    the model's native size, as the CLI and app use by default."""
    colorizer = load_e2e_colorizer(source)
    print(f"  precision: {apply_precision(colorizer, precision)}", flush=True)
    size = colorizer.working_side(working_size)
    rows = []
    with tempfile.TemporaryDirectory(prefix="colorlab-bench-") as tmp:
        for label, path in make_12mp_jpegs(Path(tmp)).items():
            # the real path, as the CLI and app run it
            total = timed(lambda path=path: encode_jpeg(colorizer.colorize(path, working_size=size)), runs=runs)
            # the same work, stage by stage
            decoded = open_image(path)
            prepared = prepare_image(decoded)
            small = colorizer.working_lightness(prepared, size)
            ab_norm = colorizer.predict_ab(normalize_l(small))
            ab_full = guided_upsample(small / 100.0, ab_norm * AB_SCALE, prepared.lightness / 100.0)
            lab = torch.cat([prepared.lightness, ab_full], dim=1)[0]
            result = colorizer.finish(prepared, small, ab_norm)
            print(
                f"  {label}: {path.stat().st_size / 1e6:.1f} MB, {E2E_SIZE[0]}x{E2E_SIZE[1]}; "
                f"{100 * out_of_gamut_fraction(lab):.1f}% of pixels need the gamut fit",
                flush=True,
            )
            stages: list[tuple[str, Callable[[], object]]] = [
                ("decode JPEG", lambda path=path: open_image(path)),
                ("full-res L (lookup tables)", lambda decoded=decoded: prepare_image(decoded)),
                (f"downsample L to {size}", lambda p=prepared: colorizer.working_lightness(p, size)),
                (f"network at {size}", lambda s=small: colorizer.predict_ab(normalize_l(s))),
                (
                    "guided upsample of ab",
                    lambda s=small, a=ab_norm, p=prepared: guided_upsample(
                        s / 100.0, a * AB_SCALE, p.lightness / 100.0
                    ),
                ),
                ("Lab -> 8-bit sRGB with gamut fit", lambda lab=lab: lab_to_srgb8(lab)),
                ("  (before: the previous Lab -> sRGB)", lambda lab=lab: reference_lab_to_srgb8(lab)),
                (
                    "finish (upsample + Lab -> sRGB + PIL)",
                    lambda p=prepared, s=small, a=ab_norm: colorizer.finish(p, s, a),
                ),
                ("encode JPEG q95", lambda r=result: encode_jpeg(r)),
            ]
            for stage, fn in stages:
                wall, cpu = timed(fn, runs=runs)
                rows.append((label, stage, wall, cpu))
                print(f"    {stage:36s} {wall:7.3f} s wall  {cpu:7.3f} s CPU", flush=True)
            rows.append((label, "total (colorize + encode)", *total))
            print(f"    {'total (colorize + encode)':36s} {total[0]:7.3f} s wall  {total[1]:7.3f} s CPU", flush=True)
            del decoded, prepared, ab_full, lab, result
    return rows


def e2e_table(rows: list[tuple[str, str, float, float]]) -> str:
    inputs = list(dict.fromkeys(r[0] for r in rows))
    stages = list(dict.fromkeys(r[1] for r in rows))
    keyed = {(r[0], r[1]): r for r in rows}
    lines = ["| stage | " + " | ".join(f"{i} s" for i in inputs) + " |", "|---|" + "---:|" * len(inputs)]
    for stage in stages:
        cells = [f"{keyed[(i, stage)][2]:.3f}" for i in inputs]
        name = f"**{stage}**" if stage.startswith("total") else stage
        lines.append(f"| {name} | " + " | ".join(f"**{c}**" if stage.startswith("total") else c for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = FlagParser(description=__doc__.splitlines()[0])
    full_size = [name for name in list_models() if not name.endswith("_tiny")]
    parser.add_argument("--models", nargs="+", default=full_size, help="registered models to time (default: all)")
    parser.add_argument(
        "--e2e_model",
        default="pix2pix_unet256",
        help="registry name (random weights) or model folder for the 12-MP run (default: pix2pix_unet256)",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (the median is reported)")
    parser.add_argument("--skip_models", action="store_true", help="only the 12-MP end-to-end run")
    parser.add_argument("--skip_e2e", action="store_true", help="only the network forward timings")
    parser.add_argument(
        "--e2e_precision",
        default="fp32",
        choices=PRECISION_CHOICES,
        help="the 12-MP run's network path (models.precision; auto = the recorded choice) (default: fp32)",
    )
    parser.add_argument(
        "--e2e_working_size",
        default=str(WORKING_SIZE),
        help=f"the 12-MP run's working size in px, or auto for the model's native size (default: {WORKING_SIZE})",
    )
    args = parser.parse_args(argv)

    policy = os.environ.get("OMP_WAIT_POLICY", "unset (spinning)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY {policy}")
    print(f"start: {load_average()}", flush=True)
    forward_rows, e2e_rows = [], []
    if not args.skip_models:
        print(f"\nNetwork forward at {WORKING_SIZE} px (median of {args.runs}):")
        forward_rows = bench_forward(args.models, args.runs)
    if not args.skip_e2e:
        size = parse_working_size(args.e2e_working_size, what="--e2e_working_size")
        print(
            f"\nEnd to end, {E2E_SIZE[0]}x{E2E_SIZE[1]} JPEG, {args.e2e_model} at {size or 'its native size'}, "
            f"{args.e2e_precision} (median of {args.runs}):"
        )
        e2e_rows = bench_end_to_end(args.e2e_model, args.runs, precision=args.e2e_precision, working_size=size)
    print(f"end: {load_average()}\n")
    if forward_rows:
        print(f"### Network forward, {WORKING_SIZE} px, CPU fp32 ({torch.get_num_threads()} threads)\n")
        print(forward_table(forward_rows) + "\n")
    if e2e_rows:
        print(
            f"### 12-megapixel photo end to end ({E2E_SIZE[0]}x{E2E_SIZE[1]} JPEG in, JPEG q95 out, "
            f"{args.e2e_model} at {args.e2e_working_size} px, {args.e2e_precision})\n"
        )
        print(e2e_table(e2e_rows) + "\n")
        print(
            "Stages are timed separately (each a median); the total is one colorize() call plus the JPEG encode. "
            "'before' is the previous Lab -> sRGB implementation, not part of the total."
        )


if __name__ == "__main__":
    main()
