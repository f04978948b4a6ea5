"""python -m models.colorize [--model SOURCE] INPUT... --out DIR [--working_size auto] [--flip_average] [--format png]
python -m models.colorize INPUT... --out DIR --size_average 128   # also averaged with a 128 px working size
python -m models.colorize --model weights/colour_hints PHOTO --hints hints.json --out DIR

Colorize photographs from the command line with any ColorLab colorizer (a local model folder or a
Hub repo id). INPUTs are image files or folders (their image files, not recursive). Each result is
written at the input's full resolution as `<stem>_<modelname>.png` (lossless) or `.jpg` with
`--format jpg`. Existing outputs are skipped unless `--overwrite` is given, so an interrupted run can
simply be started again. A file that cannot be read is reported in one sentence and skipped; the
exit status is 1 if any input failed, 2 if nothing could start (bad model, no inputs, bad hints).

`--hints FILE` gives a hint model colour points for one photo: a JSON list of {"x", "y", "rgb": [r, g, b] or
"#rrggbb" (or "lab": [L, a, b]), "radius"} in the photo's own pixels (models.hints). A model that does not take
hints refuses them. Flags are spelled with
underscores like every ColorLab command's; the dashed spelling (`--working-size`) is accepted too.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from tqdm import tqdm

# standard library only: the CLI checks its arguments before it imports torch
from models.fileperm import public_mode, safe_stem
from models.flags import FlagParser
from models.hints import Hint, HintError, load_hints_file
from models.options import check_saturation, parse_size_average, parse_working_size
from models.precision_options import PRECISION_CHOICES, check_precision

if TYPE_CHECKING:  # torch-importing modules, for annotations only
    from models.batch import BatchResult
    from models.colorizer import Colorizer

# The bundled default colorizer; relative paths are looked up in the working directory, then the repo root.
DEFAULT_MODEL = "weights/colour_global"  # the best bundled colorizer by the validation numbers
REPO_ROOT = Path(__file__).resolve().parent.parent
# Extensions picked up when a folder is given (explicitly named files are always tried).
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".tga"}
)
FORMATS = {"png": ".png", "jpg": ".jpg"}
JPEG_QUALITY = 95


class CliError(Exception):
    """A problem that stops the whole run (bad model or arguments): printed as one sentence, exit 2."""


@dataclass
class RunSummary:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the colorizing (model loading excluded), for the img/s figure


def build_parser() -> FlagParser:
    parser = FlagParser(
        prog="python -m models.colorize",
        description="Colorize black-and-white photographs at full resolution with a ColorLab colorizer.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        metavar="SOURCE",
        help=f"model folder or Hub repo id (default: the bundled {DEFAULT_MODEL})",
    )
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) for a repo id")
    parser.add_argument(
        "--working_size",
        default="auto",
        metavar="PIXELS|auto",
        help="side the network sees; colour is upsampled to full size (default: auto, the size the model was "
        "trained for, recorded in its config)",
    )
    parser.add_argument(
        "--flip_average",
        action="store_true",
        help="average with the prediction for the mirrored photo (steadier colour, twice the network time)",
    )
    parser.add_argument(
        "--size_average",
        default=None,
        metavar="PIXELS",
        help="also run the network at this second working size and average the two colourings (twice the network "
        "time; off by default: on the validation split it changed the default model's CIEDE2000 from 12.12 to "
        "12.11 with 128 and 12.17 with 256, not worth a second pass)",
    )
    parser.add_argument(
        "--keep_aspect",
        action="store_true",
        help="run the network on a rectangle of the photo's aspect instead of the whole photo squashed to a square",
    )
    parser.add_argument(
        "--saturation", type=float, default=1.0, help="scale the predicted colour (0 = gray, 1 = as predicted)"
    )
    parser.add_argument(
        "--hints",
        type=Path,
        default=None,
        metavar="FILE",
        help='colour points for a hint model, as JSON: [{"x": 120, "y": 80, "rgb": [200, 30, 40], "radius": 4}] in '
        "the photo's pixels (one INPUT photo)",
    )
    parser.add_argument("--format", choices=sorted(FORMATS), default="png", help="output format (default: png)")
    parser.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    parser.add_argument("--device", default="cpu", help="torch device for the network (default: cpu)")
    parser.add_argument(
        "--precision",
        default="auto",
        metavar="|".join(PRECISION_CHOICES),
        help="how the network runs on a CPU. auto (default): the path `python -m models.precision MODEL` measured "
        "fastest for this model on this machine within 0.05 CIEDE2000 of fp32, else plain fp32 (auto never measures "
        "by itself); fp32: the trained network as is; bf16: bfloat16 weights (CPUs with AVX-512 BF16 or AMX only; "
        "colours move slightly); int8: int8 convolutions in onnxruntime, quantized at startup (a few seconds; needs "
        '`pip install -e ".[export]"`; colours move slightly)',
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def resolve_model_source(source: str) -> str:
    """Find the default model from any working directory, and say clearly when it has not been built yet."""
    if Path(source).expanduser().exists() or source != DEFAULT_MODEL:
        return source
    bundled = REPO_ROOT / DEFAULT_MODEL
    if bundled.is_dir():
        return str(bundled)
    raise CliError(
        f"The default model {DEFAULT_MODEL} is missing (looked in {Path.cwd()} and {REPO_ROOT}); "
        "train or download it first, or pass --model FOLDER_OR_HUB_ID."
    )


def iter_inputs(inputs: Sequence[str]) -> Iterator[Path]:
    """Files as given; folders expanded to their image files in name order. Missing paths are yielded too."""
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            yield path  # a missing or unreadable file is reported when it is opened


def safe_model_name(name: str) -> str:
    """The colorizer's name as a file-name fragment (a Hub id 'user/x' arrives here as 'x')."""
    return safe_stem(name, separator="-", default="colorized", max_length=None)


def output_path(input_path: Path, out_dir: Path, model_name: str, image_format: str) -> Path:
    return out_dir / f"{input_path.stem}_{safe_model_name(model_name)}{FORMATS[image_format]}"


def save_image_atomically(image: Image.Image, path: Path, image_format: str) -> None:
    """Write to a temporary file beside `path`, then rename: an interrupted run never leaves half a file."""
    if image_format == "jpg":
        if image.mode == "RGBA":  # JPEG has no alpha: flatten transparent areas onto white
            background = Image.new("RGB", image.size, (255, 255, 255))
            background.paste(image, mask=image.getchannel("A"))
            image = background
        options = {"format": "JPEG", "quality": JPEG_QUALITY}
    else:
        options = {"format": "PNG"}
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    try:
        os.fchmod(handle, public_mode())  # mkstemp's 0600 would outlive the rename: honour the umask instead
        with os.fdopen(handle, "wb") as stream:
            image.save(stream, **options)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _progress(jobs: list[tuple[Path, Path]], quiet: bool) -> tqdm:
    # disable=None hides the bar when stderr is not a terminal (logs, CI) but keeps the messages
    return tqdm(
        total=len(jobs), desc="colorizing", unit="img", disable=quiet or None, file=sys.stderr, dynamic_ncols=True
    )


def _report(progress: tqdm, message: str) -> None:
    progress.write(message, file=sys.stderr)


def colorize_files(args: argparse.Namespace, paths: list[Path], hints: list[Hint] | None = None) -> RunSummary:
    from models.batch import colorize_pipelined  # torch imports: only after the arguments are known to be valid
    from models.hub import load_colorizer
    from models.precision import apply_precision

    source = resolve_model_source(args.model)
    try:
        colorizer = load_colorizer(source, revision=args.revision, device=args.device)
        colorizer.check_hints(hints)  # a model without hint inputs refuses them before any photo is read
        precision = apply_precision(colorizer, args.precision)  # before any photo: a path that cannot run says so
        colorizer.check_size_average(args.size_average, args.working_size)  # a sampler, or the same side twice
    except ValueError as error:
        raise CliError(str(error)) from error
    if not args.quiet:
        print(f"precision: {precision}", file=sys.stderr)
    model_name = colorizer.name
    args.out.mkdir(parents=True, exist_ok=True)
    summary = RunSummary()
    claimed: dict[Path, Path] = {}  # output -> the input that produced it in this run
    jobs: list[tuple[Path, Path]] = []
    for path in paths:
        target = output_path(path, args.out, model_name, args.format)
        if target in claimed:
            message = f"its output name {target.name} is already used by {claimed[target]}; rename one of them"
            summary.failed.append((path, message))
            print(f"skipped {path}: {message}.", file=sys.stderr)
            continue
        claimed[target] = path
        if target.exists() and not args.overwrite:
            summary.skipped.append(path)
            print(f"skipped {path}: {target} exists (pass --overwrite to replace it).", file=sys.stderr)
            continue
        jobs.append((path, target))
    # Decoding and encoding run on a small pool while the network works on the current batch (models.batch).
    progress = _progress(jobs, args.quiet)
    started = time.perf_counter()
    options = dict(
        working_size=args.working_size,
        saturation=args.saturation,
        keep_aspect=args.keep_aspect,
        flip_average=args.flip_average,
        size_average=args.size_average,
    )
    if hints:
        results = _colorize_with_hints(colorizer, jobs, hints, args.format, options)
    else:
        results = colorize_pipelined(
            colorizer, jobs, lambda image, target: save_image_atomically(image, target, args.format), **options
        )
    for result in results:
        progress.update(1)
        if result.error is None:
            summary.written.append(result.target)
        elif isinstance(result.error, OSError):  # writing the output (disk full, permissions)
            summary.failed.append((result.source, str(result.error)))
            _report(progress, f"failed {result.source}: could not write {result.target} ({result.error}).")
        else:  # ImageInputError and the colorizer's checks: already one sentence
            summary.failed.append((result.source, str(result.error)))
            _report(progress, f"failed {result.source}: {result.error}")
    progress.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _colorize_with_hints(
    colorizer: Colorizer, jobs: list[tuple[Path, Path]], hints: list[Hint], image_format: str, options: dict
) -> Iterator[BatchResult]:
    """The one photo a hints file describes, colorized with its points (no batching to pipeline)."""
    from models.batch import BatchResult

    for source, target in jobs:
        try:
            save_image_atomically(colorizer.colorize(source, hints=hints, **options), target, image_format)
        except (OSError, ValueError) as error:
            yield BatchResult(source=source, target=target, error=error)
        else:
            yield BatchResult(source=source, target=target, error=None)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.working_size = parse_working_size(args.working_size, what="--working_size")
        args.size_average = parse_size_average(args.size_average, what="--size_average")
        check_saturation(args.saturation, what="--saturation")
        args.precision = check_precision(args.precision, what="--precision")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.out.exists() and not args.out.is_dir():
        print(f"error: --out {args.out} is a file; pass a folder for the results.", file=sys.stderr)
        return 2
    paths = list(iter_inputs(args.inputs))
    if not paths:
        print(f"error: no image files found in {', '.join(args.inputs)}.", file=sys.stderr)
        return 2
    hints = None
    if args.hints is not None:
        if len(paths) != 1:
            print(
                f"error: --hints gives points in one photo's pixels, but {len(paths)} photos were given; "
                "pass exactly one INPUT photo with --hints.",
                file=sys.stderr,
            )
            return 2
        try:
            hints = load_hints_file(args.hints)
        except HintError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    try:
        summary = colorize_files(args, paths, hints)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rate = f" ({len(summary.written) / summary.seconds:.2f} img/s)" if summary.written and summary.seconds else ""
    print(
        f"{len(summary.written)} written{rate}, {len(summary.skipped)} skipped (already there), "
        f"{len(summary.failed)} failed; results in {args.out}",
        file=sys.stderr,
    )
    return 1 if summary.failed else 0


if __name__ == "__main__":
    # Before torch loads OpenMP: spinning worker threads made full-resolution output 10x slower (and
    # 50x the CPU) whenever another process shared the cores; sleeping workers cost ~1% when idle.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    sys.exit(main())
