"""python -m judge.evaluate --models SOURCE... --dataset NAME_OR_PATH --out DIR [--limit N] [--ratings PATH]

Scores any set of colorizers (local folders or Hub ids; `name=SOURCE` sets the row name) on the same images,
always adding a grayscale baseline row (ab = 0), and writes report.md, report.json, per_image.csv, a
comparison grid and one bar chart per metric (see `judge.report`).

    python -m judge.evaluate --models weights/pix2pix unet=runs/unet --dataset data/photos --limit 100 \
        --out reports/eval --ratings data/ratings.sqlite3

Every image is center-cropped and resized to --image_size, then each colorizer runs through the real
pipeline (`Colorizer.colorize_batch`, model at --working_size) and is scored against that image. The
weight-free metrics (`judge.metrics`) are always computed; LPIPS and FID/KID only with real ImageNet
weights (--lpips_weights, --inception_weights, the torch hub cache, or --download_weights), otherwise
the report says why they are missing. Results are deterministic for a --seed.

`--sweep 128,256,...` also scores every model at those working sizes (`judge.sweep`); `--hints 0,1,2,5,10,20`
adds the hint curve: a simulated user gives each photo that many colour points from its ground truth, the same for
every model, and hint models are scored at each count against the hint bars (`judge.hint_curve`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm.auto import tqdm

from corpus.dataset_sources import load_splits, split_names  # datasets open here as they do for training
from judge.fid import inception_features, load_fid_inception
from judge.hint_curve import DEFAULT_HINT_COUNTS, parse_hint_counts, run_hint_curve
from judge.inception import FIDInceptionV3
from judge.lpips_metric import LPIPS, load_lpips
from judge.metrics import image_metrics
from judge.pretrained import (
    ALEXNET,
    FID_INCEPTION,
    WeightsUnavailable,
    resolve_weights_file,
    weights_provenance,
)
from judge.sweep import DEFAULT_SWEEP, run_sweep
from models.colorizer import DEFAULT_WORKING_SIZE, Colorizer
from models.flags import FlagParser
from models.hub import load_colorizer
from models.hub_files import ModelSpec
from models.imageio import ImageInputError, open_image
from models.options import parse_size_average, parse_working_size
from models.precision import apply_precision
from models.precision_options import check_precision

BASELINE_NAME = "grayscale"


class GrayscaleBaseline(Colorizer):
    """The floor every colorizer must beat: the input's own lightness with ab = 0, through the same pipeline."""

    def __init__(self) -> None:
        super().__init__(name=BASELINE_NAME, card="Grayscale baseline: RGB from (L, ab = 0).")

    @property
    def native_working_size(self) -> int:
        return DEFAULT_WORKING_SIZE  # any size gives the same gray

    @property
    def supports_size_average(self) -> bool:
        return False  # the same gray at every size

    def predict_ab(self, l_norm: torch.Tensor, **hooks: Any) -> torch.Tensor:
        return torch.zeros(l_norm.shape[0], 2, *l_norm.shape[-2:])


def parse_model_spec(spec: str) -> ModelSpec:
    """`SOURCE` (named after its last path part) or `name=SOURCE`."""
    name, sep, source = spec.partition("=")
    if sep and name and "/" not in name and not Path(spec).exists():
        if not source:
            raise ValueError(f"--models {spec}: nothing after '='; write name=SOURCE.")
        return ModelSpec(name=name, source=source)
    return ModelSpec(name=Path(spec.rstrip("/")).name or spec, source=spec)


def check_unique_names(specs: list[ModelSpec]) -> None:
    names = [s.name for s in specs]
    for name in names:
        if name == BASELINE_NAME:
            raise ValueError(f"The name '{BASELINE_NAME}' is reserved for the baseline row; rename with name=SOURCE.")
        if names.count(name) > 1:
            raise ValueError(f"Two models are named '{name}'; give them distinct names with name=SOURCE.")


# --- images -------------------------------------------------------------------------------------------------------
@dataclass
class EvalImages:
    ids: list[str]
    rgb: list[np.ndarray]  # (S, S, 3) uint8 ground truths, center-cropped and resized
    split: str
    skipped: list[str] = field(default_factory=list)  # unreadable records, reported rather than hidden


def resolve_split(dataset: str, split: str | None) -> str:
    """The requested split, else "validation" when the dataset has one, else "train" (or its only split)."""
    if split:
        return split
    names = split_names(dataset)  # [] for a single saved Dataset
    if "validation" in names:
        return "validation"
    return "train" if "train" in names or not names else names[0]


def _record_id(record: object, index: int) -> str:
    path = record.get("path") if isinstance(record, dict) else None
    return f"{index:05d}_{Path(path).name}" if path else f"{index:05d}"


def center_square(image: Image.Image, size: int) -> np.ndarray:
    """RGB uint8 (size, size, 3): the largest centered square, resized with Lanczos."""
    square = ImageOps.fit(image.convert("RGB"), (size, size), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    return np.asarray(square, dtype=np.uint8)


def whole_photo(image: Image.Image, size: int) -> np.ndarray:
    """RGB uint8: the whole photo, resized with Lanczos so its long side is `size` (its aspect kept)."""
    scale = size / max(image.size)
    shape = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return np.asarray(image.convert("RGB").resize(shape, Image.Resampling.LANCZOS), dtype=np.uint8)


def load_eval_images(
    dataset: str,
    *,
    split: str | None,
    limit: int | None,
    image_size: int,
    fit: str = "square",
    image_column: str | None = None,
) -> EvalImages:
    """The first `limit` images of the split (dataset order, so every run scores the same images)."""
    chosen = resolve_split(dataset, split)
    records, _, column = load_splits(dataset, split=chosen, image_column=image_column)
    count = len(records) if limit is None else min(limit, len(records))
    images = EvalImages(ids=[], rgb=[], split=chosen)
    for index in range(count):
        record = records[index][column]
        source = (record.get("bytes") or record.get("path")) if isinstance(record, dict) else record
        try:
            images.rgb.append((whole_photo if fit == "whole" else center_square)(open_image(source), image_size))
            images.ids.append(_record_id(record, index))
        except ImageInputError as error:
            images.skipped.append(f"{_record_id(record, index)}: {error}")
    if not images.rgb:
        raise ValueError(f"Dataset '{dataset}' split '{chosen}' has no readable images to evaluate.")
    return images


# --- metrics that need weights -----------------------------------------------------------------------------------
@dataclass
class WeightedMetrics:
    lpips: LPIPS | None = None
    inception: FIDInceptionV3 | None = None
    unavailable: dict[str, str] = field(default_factory=dict)  # metric -> "unavailable: ..." sentence
    weights: dict[str, dict] = field(default_factory=dict)  # metric -> provenance of the file it used


def load_weighted_metrics(
    *, lpips_weights: str | None, inception_weights: str | None, download: bool, fid: bool = True
) -> WeightedMetrics:
    """LPIPS and the FID Inception from real weights; each one missing is recorded with its reason instead."""
    loaded = WeightedMetrics()
    try:
        alexnet_file = resolve_weights_file(ALEXNET, lpips_weights, download=download)
        loaded.lpips = load_lpips(alexnet_file)
        loaded.weights["lpips"] = weights_provenance(ALEXNET, alexnet_file)
    except WeightsUnavailable as reason:
        loaded.unavailable["lpips"] = f"unavailable: {reason}"
    if not fid:
        loaded.unavailable["fid"] = loaded.unavailable["kid"] = "unavailable: skipped with --no_fid"
        return loaded
    try:
        inception_file = resolve_weights_file(FID_INCEPTION, inception_weights, download=download)
        loaded.inception = load_fid_inception(inception_file)
        loaded.weights["fid"] = loaded.weights["kid"] = weights_provenance(FID_INCEPTION, inception_file)
    except WeightsUnavailable as reason:
        loaded.unavailable["fid"] = loaded.unavailable["kid"] = f"unavailable: {reason}"
    return loaded


# --- the evaluation loop --------------------------------------------------------------------------------------------
def grid_indices(count: int, wanted: int) -> list[int]:
    """`wanted` images spread evenly over the evaluated set (deterministic, includes the first)."""
    if wanted <= 0 or count == 0:
        return []
    return sorted({int(i) for i in np.linspace(0, count - 1, min(wanted, count)).round()})


def evaluate(
    colorizers: list[Colorizer],
    images: EvalImages,
    *,
    working_size: int | None = None,
    keep_aspect: bool = False,
    flip_average: bool = False,
    size_average: int | None = None,
    batch_size: int = 8,
    seed: int = 0,
    weighted: WeightedMetrics | None = None,
    grid_images: int = 6,
    progress: bool | None = None,
) -> dict:
    """Run every colorizer on every image; per-image metric rows, Inception features, grid outputs and timings.

    `size_average` (a second working size) applies to the networks only: the grayscale baseline has nothing to
    average and a sampler's two draws would be two colourings."""
    weighted = weighted or WeightedMetrics()
    names = [c.name for c in colorizers]
    rows_by_model: dict[str, list[dict]] = {name: [] for name in names}  # model-major order, whatever the batching
    features: dict[str, list[np.ndarray]] = {name: [] for name in ["ground truth", *names]}
    chosen = set(grid_indices(len(images.rgb), grid_images))
    grid: dict[str, dict[int, np.ndarray]] = {name: {} for name in names}
    # Wall-clock and process CPU seconds: CPU time stays meaningful when other jobs share the cores.
    seconds = {name: dict.fromkeys(("inference", "metrics", "inference_cpu", "metrics_cpu"), 0.0) for name in names}
    bar = tqdm(total=len(images.rgb) * len(colorizers), desc="evaluating", unit="img", disable=progress is False)
    for start in range(0, len(images.rgb), batch_size):
        targets = images.rgb[start : start + batch_size]
        if weighted.inception is not None:
            features["ground truth"].append(inception_features(weighted.inception, np.stack(targets)))
        for colorizer in colorizers:
            torch.manual_seed(seed)  # stochastic colorizers (diffusion) give the same output on every run
            began, began_cpu = time.perf_counter(), time.process_time()
            outputs = colorizer.colorize_batch(
                [Image.fromarray(t) for t in targets],
                working_size=working_size,
                batch_size=batch_size,
                keep_aspect=keep_aspect,
                flip_average=flip_average,
                size_average=_size_average_for(colorizer, size_average),
            )
            preds = [np.asarray(o.convert("RGB"), dtype=np.uint8) for o in outputs]
            measured, measured_cpu = time.perf_counter(), time.process_time()
            lpips = weighted.lpips.distance_uint8(np.stack(preds), np.stack(targets)) if weighted.lpips else None
            for offset, (pred, target) in enumerate(zip(preds, targets, strict=True)):
                index = start + offset
                row = {"image": images.ids[index], "model": colorizer.name, **image_metrics(pred, target)}
                if lpips is not None:
                    row["lpips"] = float(lpips[offset])
                rows_by_model[colorizer.name].append(row)
                if index in chosen:
                    grid[colorizer.name][index] = pred
            if weighted.inception is not None:
                features[colorizer.name].append(inception_features(weighted.inception, np.stack(preds)))
            timing = seconds[colorizer.name]
            timing["inference"] += measured - began
            timing["inference_cpu"] += measured_cpu - began_cpu
            timing["metrics"] += time.perf_counter() - measured
            timing["metrics_cpu"] += time.process_time() - measured_cpu
            bar.update(len(targets))
    bar.close()
    return {
        "per_image": [row for name in names for row in rows_by_model[name]],
        "features": {k: np.concatenate(v) for k, v in features.items() if v},
        "grid": {"indices": sorted(chosen), "outputs": grid},
        "seconds": seconds,
    }


# --- command line ---------------------------------------------------------------------------------------------------
def _size_average_for(colorizer: Colorizer, size_average: int | None) -> int | None:
    """The second working size for `colorizer`: `--size_average` applies to every model that can use it."""
    return size_average if colorizer.supports_size_average else None


def _working_size(text: str) -> int | None:
    try:
        return parse_working_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("working_size ").rstrip(".")) from None


def _sizes(text: str) -> list[int]:
    sizes = [_working_size(part) for part in text.split(",") if part.strip()]
    if not sizes or any(size is None for size in sizes):
        raise argparse.ArgumentTypeError(f"expected pixel sizes separated by commas (e.g. 128,256), got {text!r}")
    return [int(size) for size in sizes]


def _hint_counts(text: str) -> list[int]:
    try:
        return parse_hint_counts(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> FlagParser:
    """The command's flags, spelled with underscores (dashes are accepted too: models.flags)."""
    parser = FlagParser(prog="python -m judge.evaluate", description=__doc__.split("\n\n")[1], allow_abbrev=False)
    parser.add_argument("--models", nargs="+", required=True, help="model folders or Hub ids, optionally name=SOURCE")
    parser.add_argument(
        "--dataset",
        required=True,
        help="image folder, data file (.parquet .csv .tsv .json .jsonl .arrow) or folder of them, save_to_disk "
        "folder, or Hub dataset id",
    )
    parser.add_argument(
        "--image_column",
        default=None,
        help="the dataset's column of images or image paths (default: its datasets.Image column)",
    )
    parser.add_argument("--split", default=None, help="dataset split (default: validation if present, else train)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N images")
    parser.add_argument("--image_size", type=int, default=256, help="side of the center crop every model is scored on")
    parser.add_argument(
        "--working_size",
        type=_working_size,
        default=None,
        metavar="PIXELS|auto",
        help="side the networks run at (default: auto, each model's native size from its config)",
    )
    parser.add_argument(
        "--sweep",
        type=_sizes,
        default=None,
        metavar="N,N,...",
        help=f"also score every model at each of these working sizes (e.g. {','.join(map(str, DEFAULT_SWEEP))})",
    )
    parser.add_argument(
        "--hints",
        type=_hint_counts,
        default=None,
        metavar="N,N,...",
        help="also score every model as a simulated user gives each photo N colour hints from the ground truth "
        f"(the hint curve, e.g. {','.join(map(str, DEFAULT_HINT_COUNTS))}; models without hint inputs at 0 only)",
    )
    parser.add_argument(
        "--fit",
        choices=("square", "whole"),
        default="square",
        help="square: the centred square crop of --image_size; whole: the whole photo, long side --image_size",
    )
    parser.add_argument("--keep_aspect", action="store_true", help="pipeline: keep the photo's aspect (no squash)")
    parser.add_argument("--flip_average", action="store_true", help="pipeline: average with the mirrored photo")
    parser.add_argument(
        "--size_average",
        default=None,
        metavar="PIXELS",
        help="pipeline (main table only): average each network's prediction with one at this second working size",
    )
    parser.add_argument(
        "--precision",
        default="auto",
        help="auto|fp32|bf16|int8: each network's precision path (models.precision; auto is the choice measured on "
        "this machine, else fp32). The report records which path each model ran",
    )
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--out", required=True, help="folder for report.md, report.json, per_image.csv, PNGs")
    parser.add_argument("--grid_images", type=int, default=6, help="images shown in the comparison grid")
    parser.add_argument("--lpips_weights", default=None, help="torchvision AlexNet state dict (alexnet-owt-*.pth)")
    parser.add_argument("--inception_weights", default=None, help="FID Inception state dict (pt_inception-*.pth)")
    parser.add_argument("--download_weights", action="store_true", help="download missing LPIPS/FID weights")
    parser.add_argument("--no_fid", action="store_true", help="skip FID/KID even when weights exist (slow on CPU)")
    parser.add_argument("--ratings", default=None, help="the app's ratings database (file or data folder) or export")
    parser.add_argument("--n_boot", type=int, default=1000, help="bootstrap resamples for confidence intervals")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag in ("limit", "image_size", "batch_size", "n_boot"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag} must be a positive integer, got {value}.")
    try:
        args.size_average = parse_size_average(args.size_average, what="--size_average")
        args.precision = check_precision(args.precision, what="--precision")
    except ValueError as error:
        parser.error(str(error))
    return args


def run(args: argparse.Namespace) -> Path:
    """The whole command: load, evaluate, join ratings, write the report. Returns the report folder."""
    # imported when the command runs, not on import: the report stack (scipy, matplotlib) is slow to load
    from judge.human import load_votes
    from judge.report import build_report, write_report

    specs = [parse_model_spec(spec) for spec in args.models]
    check_unique_names(specs)
    votes = load_votes(args.ratings) if args.ratings else None  # fail fast, before minutes of inference
    colorizers: list[Colorizer] = [GrayscaleBaseline()]
    colorizers += [load_colorizer(s.source, name=s.name, device=args.device) for s in specs]
    for colorizer in colorizers:  # a second size equal to a model's first is refused before any photo is read
        colorizer.check_size_average(_size_average_for(colorizer, args.size_average), args.working_size)
    images = load_eval_images(
        args.dataset,
        split=args.split,
        limit=args.limit,
        image_size=args.image_size,
        fit=args.fit,
        image_column=args.image_column,
    )
    # after the data loaded (a bad dataset is the one sentence a user sees): the grayscale baseline has no network,
    # every other model runs on the precision path asked for, and says which
    precisions = {c.name: apply_precision(c, args.precision) for c in colorizers[1:]}
    for line in precisions.values():
        print(f"precision: {line}", file=sys.stderr)
    weighted = load_weighted_metrics(
        lpips_weights=args.lpips_weights,
        inception_weights=args.inception_weights,
        download=args.download_weights,
        fid=not args.no_fid,
    )
    # the pipeline options the main table and the sweep share
    pipeline = dict(keep_aspect=args.keep_aspect, flip_average=args.flip_average, batch_size=args.batch_size)
    raw = evaluate(
        colorizers,
        images,
        working_size=args.working_size,
        seed=args.seed,
        **pipeline,
        weighted=weighted,
        size_average=args.size_average,
        grid_images=args.grid_images,
        progress=False if args.no_progress else None,
    )
    config = {key: value for key, value in vars(args).items() if key not in ("no_progress",)}
    config["split"] = images.split
    config["sources"] = {BASELINE_NAME: "grayscale baseline (ab = 0)", **{s.name: s.source for s in specs}}
    config["weights"] = weighted.weights
    config["working_sizes"] = {c.name: c.resolve_working_size(args.working_size) for c in colorizers}
    config["precisions"] = precisions
    report = build_report(raw, images, [c.name for c in colorizers], weighted.unavailable, config, votes=votes)
    if args.sweep:
        report["sweep"] = run_sweep(
            evaluate,
            colorizers,
            images,
            sizes=args.sweep,
            seed=args.seed,
            **pipeline,
        )
    if args.hints:
        report["hints"] = run_hint_curve(
            colorizers,
            images,
            counts=args.hints,
            seed=args.seed,
            working_size=args.working_size,
            keep_aspect=args.keep_aspect,
            flip_average=args.flip_average,
            progress=False if args.no_progress else None,
        )
    return write_report(report, raw, images, Path(args.out))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        out = run(args)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    sys.exit(main())
