"""python benchmarks/bench_train.py [--model pix2pix_unet256] [--resolution 256] [--batch 4] [--workers 0 1 2]

Training throughput (img/s) of one pix2pix G+D step fed by the real data pipeline (DataLoader over a
folder of JPEG photos: decode, random resized crop + flip, sRGB -> Lab, collate) against the same
step on batches already in memory, and the pipeline's overhead in percent. The step does what
trainer/train.py's loop does for pix2pix (D on real and fake pairs, G on 100 x L1 + vanilla GAN, Adam
2e-4 / 0.5) without accelerate's bookkeeping. The photos are data/corpus/train when it has been built
(real JPEGs of mixed sizes), else 32 JPEGs of 800 x 600 cut from scikit-image's photographs.

The configurations take turns (rounds) so that load from other processes spreads over all of them; each
timed stretch includes creating the DataLoader iterator (worker start-up, first batch), as the trainer
pays once per epoch. Wall time is the img/s users see; CPU time (this process plus its joined workers)
is steadier when other processes share the cores. Run with the Makefile's malloc settings
(MALLOC_MMAP_THRESHOLD_ etc.); the load average is printed because other processes inflate every
figure. On an oversubscribed CPU, 2 intra-op threads can be slower than 1 (`--threads 1`): a parallel
region waits for a thread that is not scheduled, which hurts most on the pipeline's small Lab tensor ops.
"""

from __future__ import annotations

import itertools
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

from corpus.dataset_sources import load_splits  # noqa: E402
from models.flags import FlagParser  # noqa: E402
from models.pix2pix import PatchDiscriminator  # noqa: E402
from models.registry import create_model  # noqa: E402
from trainer.data import ColorizationDataset, CropConfig, collate  # noqa: E402
from trainer.losses import GANLoss  # noqa: E402

CORPUS = REPO_ROOT / "data" / "corpus" / "train"
IN_MEMORY = "in-memory tensors"
Batch = tuple[torch.Tensor, torch.Tensor]
Timing = tuple[float, float]  # wall seconds, CPU seconds


def write_photos(folder: Path, count: int = 32, size: tuple[int, int] = (800, 600)) -> Path:
    """`count` JPEGs of `size`: seeded crops of scikit-image's colour photographs, resized."""
    import skimage.data

    photos = [getattr(skimage.data, name)() for name in ("astronaut", "chelsea", "coffee", "rocket", "retina")]
    photos += list(skimage.data.stereo_motorcycle()[:2])
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        photo = photos[index % len(photos)][..., :3]
        height, width = photo.shape[:2]
        crop_h = int(height * rng.uniform(0.6, 1.0))
        crop_w = min(width, int(crop_h * size[0] / size[1]))
        top, left = rng.integers(0, height - crop_h + 1), rng.integers(0, width - crop_w + 1)
        image = Image.fromarray(photo[top : top + crop_h, left : left + crop_w]).resize(size, Image.Resampling.LANCZOS)
        image.save(folder / f"photo_{index:03d}.jpg", quality=90)
    return folder


def build_dataset(folder: Path, resolution: int) -> ColorizationDataset:
    train, _, column = load_splits(str(folder))
    return ColorizationDataset(train, image_column=column, crop=CropConfig(resolution=resolution), train=True)


def make_step(model_name: str, lambda_l1: float = 100.0) -> Callable[[Batch], None]:
    """One optimisation step of G and D, as trainer/train.py runs it for pix2pix models."""
    generator, discriminator = create_model(model_name).train(), PatchDiscriminator().train()
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    gan_loss = GANLoss("vanilla")

    def step(batch: Batch) -> None:
        l_norm, ab_norm = batch
        fake_ab = generator(l_norm)
        reconstruction = torch.nn.functional.l1_loss(fake_ab, ab_norm)
        logits = discriminator(torch.cat([l_norm, l_norm]), torch.cat([ab_norm, fake_ab.detach()]))
        real_logits, fake_logits = logits.chunk(2)
        d_loss = 0.5 * (gan_loss(real_logits, target_is_real=True) + gan_loss(fake_logits, target_is_real=False))
        d_loss.backward()
        optimizer_d.step()
        optimizer_d.zero_grad(set_to_none=True)
        discriminator.requires_grad_(False)
        adversarial = gan_loss(discriminator(l_norm, fake_ab), target_is_real=True, for_discriminator=False)
        discriminator.requires_grad_(True)
        (lambda_l1 * reconstruction + adversarial).backward()
        optimizer_g.step()
        optimizer_g.zero_grad(set_to_none=True)

    return step


def loader_batches(dataset: ColorizationDataset, batch: int, workers: int, epoch: int) -> Generator[Batch]:
    dataset.set_epoch(epoch)  # a fresh shuffle and fresh crops for every timed stretch
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch, drop_last=True, collate_fn=collate, num_workers=workers
    )
    for b in loader:
        yield b["L"], b["ab"]


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (DataLoader workers, once joined)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(make_batches: Callable[[], Generator[Batch]], steps: int, step: Callable[[Batch], None] | None) -> Timing:
    """(wall, CPU) seconds for `steps` batches (each through `step` if given), including creating the iterator."""
    began, began_cpu = time.perf_counter(), cpu_seconds()
    batches = make_batches()
    for _ in range(steps):
        batch = next(batches)
        if step is not None:
            step(batch)
    wall = time.perf_counter() - began
    batches.close()  # drops the DataLoader iterator, which stops and joins its workers: their CPU time counts
    return wall, cpu_seconds() - began_cpu


def table(stretches: dict[str, list[Timing]], images: int) -> list[str]:
    """Markdown rows: median img/s and CPU ms per image, and the overhead of each input over in-memory tensors."""
    medians = {
        name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
        for name, runs in stretches.items()
    }
    base_wall, base_cpu = medians[IN_MEMORY]
    rows = [
        "| input | img/s (median) | img/s (range) | CPU ms / img | overhead (wall) | overhead (CPU) |",
        "|---|---|---|---|---|---|",
    ]
    for name, (wall, cpu) in medians.items():
        walls = [w for w, _ in stretches[name]]
        extra = ("", "") if name == IN_MEMORY else (f"{wall / base_wall - 1:+.1%}", f"{cpu / base_cpu - 1:+.1%}")
        rows.append(
            f"| {name} | {images / wall:.2f} | {images / max(walls):.2f}-{images / min(walls):.2f} | "
            f"{cpu / images * 1000:.0f} | {extra[0]} | {extra[1]} |"
        )
    return rows


def main() -> None:
    parser = FlagParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pix2pix_unet256")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="DataLoader worker counts to time.")
    parser.add_argument("--steps", type=int, default=4, help="Timed steps per configuration and round.")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--photos", default=None, help="A folder of photos, or 'generated' (default: data/corpus/train if built)."
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the step (default: torch's).")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        if args.photos == "generated" or (args.photos is None and not CORPUS.is_dir()):
            folder, source = write_photos(Path(tmp) / "photos"), "scikit-image photos"
        else:
            folder = Path(args.photos or CORPUS)
            if not folder.is_dir():
                sys.exit(f"error: --photos {folder} is not a folder; pass a folder of photos or 'generated'.")
            source = str(folder)
        dataset = build_dataset(folder, args.resolution)
        needed = args.steps * args.batch
        if len(dataset) < needed:
            sys.exit(f"error: {folder} has {len(dataset)} images; --steps x --batch needs {needed}.")
        # In-memory batches: decoded once, outside any timing, from the same pipeline.
        first = itertools.islice(loader_batches(dataset, args.batch, 0, epoch=10_000), args.steps)
        memory = [(l_norm.clone(), ab_norm.clone()) for l_norm, ab_norm in first]
        step = make_step(args.model)
        for batch in memory[:2]:  # warm-up: first-call allocations, oneDNN kernel selection
            step(batch)

        stretches: dict[str, list[Timing]] = {IN_MEMORY: []}
        data_only: dict[str, list[Timing]] = {}  # the pipeline alone, no model
        for epoch in range(args.rounds):
            stretches[IN_MEMORY].append(timed(lambda: (b for b in memory), args.steps, step))
            for w in args.workers:

                def batches(w: int = w, epoch: int = epoch) -> Generator[Batch]:
                    return loader_batches(dataset, args.batch, w, epoch)

                stretches.setdefault(f"DataLoader, {w} worker(s)", []).append(timed(batches, args.steps, step))
                data_only.setdefault(f"{w} worker(s)", []).append(timed(batches, args.steps, None))
    load_after = os.getloadavg()

    images = args.steps * args.batch
    pipeline = {
        name: (images / statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs) / images)
        for name, runs in data_only.items()
    }
    first = f"{args.workers[0]} worker(s)"
    print(
        "\n".join(
            [
                f"Training throughput: {args.model} G+D step, batch {args.batch}, {args.resolution} px, "
                f"{len(dataset)} JPEGs from {source}; {os.cpu_count()} CPU cores "
                f"({platform.processor() or platform.machine()}), torch {torch.__version__}, "
                f"{torch.get_num_threads()} thread(s) for the step; median of {args.rounds} rounds of {args.steps} "
                f"steps; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (other processes "
                "share these cores).",
                "",
                *table(stretches, images),
                "",
                "The pipeline alone (JPEG decode + crop/flip + Lab + collate, no model): "
                + ", ".join(
                    f"{rate:.0f} img/s and {cpu * 1000:.0f} CPU ms/img with {n}" for n, (rate, cpu) in pipeline.items()
                )
                + " (worker start-up included). In the main process it costs "
                f"{pipeline[first][1] / (statistics.median(c for _, c in stretches[IN_MEMORY]) / images):.1%} of "
                "the step's CPU time per image.",
            ]
        )
    )


if __name__ == "__main__":
    main()
