"""python benchmarks/bench_batch.py [--model weights/colour_l1] [--photos 100] [--batch_size 4] [--workers 2]

Folder colorizing throughput: --photos photos of mixed sizes (the corpus' photos, data/corpus/{train,validation},
as they are: from thumbnails to several megapixels; scikit-image's photos resized to 0.1-4 MP when the corpus is
absent) colorized and written as PNG into a temp folder, one by one (decode -> network -> finish -> encode in one
thread, as the CLI does today) and pipelined (models.batch: decoding and encoding on a thread pool, overlapped with
the network). Prints img/s for each, run alternately (--rounds) so a busy machine slows both alike.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

import bench_support

bench_support.use_serving_environment()  # before torch loads OpenMP and malloc settles

import torch  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from models.batch import colorize_pipelined  # noqa: E402
from models.flags import FlagParser  # noqa: E402
from models.hub import load_colorizer  # noqa: E402

CORPUS = Path("data/corpus")


def mixed_photos(count: int, folder: Path) -> list[Path]:
    """The corpus' photos as they are, or scikit-image's resized to sizes from 0.1 to 4 megapixels."""
    corpus = sorted(p for split in ("train", "validation") for p in (CORPUS / split).glob("*.jpg"))
    if len(corpus) >= count:
        step = len(corpus) / count
        return [corpus[int(i * step)] for i in range(count)]
    import skimage.data

    names = ("astronaut", "coffee", "chelsea", "rocket", "camera")
    paths = []
    for index in range(count):
        image = Image.fromarray(getattr(skimage.data, names[index % len(names)])())
        megapixels = 0.1 + 3.9 * ((index * 37) % count) / count
        scale = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
        path = folder / f"{index:03d}.jpg"
        image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = FlagParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="weights/colour_l1")
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); load average {load[0]:.1f}", flush=True)
    colorizer = load_colorizer(args.model)
    with tempfile.TemporaryDirectory(prefix="colorlab-bench-batch-") as tmp:
        inputs = mixed_photos(args.photos, Path(tmp))
        pixels = [Image.open(p).size for p in inputs]
        megapixels = sorted(w * h / 1e6 for w, h in pixels)
        print(
            f"{len(inputs)} photos, {megapixels[0]:.2f}-{megapixels[-1]:.2f} MP (median "
            f"{statistics.median(megapixels):.2f}), {args.model}, batch {args.batch_size}, {args.workers} workers"
        )
        out = Path(tmp) / "out"
        out.mkdir()
        jobs = [(path, out / f"{index:03d}.png") for index, path in enumerate(inputs)]

        def one_by_one() -> None:
            for source, target in jobs:
                colorizer.colorize(source).save(target, format="PNG")

        def pipelined() -> None:
            results = colorize_pipelined(
                colorizer,
                jobs,
                lambda image, target: image.save(target, format="PNG"),
                batch_size=args.batch_size,
                workers=args.workers,
            )
            failed = [r for r in results if r.error is not None]
            assert not failed, failed[0].error

        # paired rounds (bench_support.alternate: the first, warm-up round is dropped)
        figures = bench_support.alternate({"one by one": one_by_one, "pipelined": pipelined}, args.rounds)
        for name, (wall, cpu) in figures.items():
            print(f"  {name:11s} {len(jobs) / wall:6.2f} img/s ({wall:.1f} s wall, {cpu:.1f} s CPU)", flush=True)
    load = os.getloadavg()
    print(f"end: load average {load[0]:.1f}")


if __name__ == "__main__":
    main()
