"""Colorize many photos with decoding and encoding overlapped with the network.

    from models.batch import colorize_pipelined
    jobs = [(Path("scans/a.jpg"), Path("out/a.png")), (Path("scans/b.jpg"), Path("out/b.png"))]
    for result in colorize_pipelined(colorizer, jobs, lambda image, target: image.save(target)):
        print(result.source, result.error or "ok")

Photos are decoded (open, EXIF, full-resolution L) and finished (guided upsampling of ab, Lab -> sRGB, `save`) on a
small thread pool while the calling thread runs the network on the current batch; PIL's codecs and torch's ops
release the GIL, so they overlap. At most 2 x `batch_size` photos are decoded ahead and at most 2 x `batch_size`
wait to be written, so memory stays bounded on a folder of any length. Results come back in input order, each with
the error (one sentence: a ValueError or OSError) that stopped that photo, if any; the others go on. The outputs are
the same images `Colorizer.colorize` gives one by one (tests/test_batch.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from models.colorizer import NUM_SAMPLES, Colorizer, PreparedImage, prepare_image
from models.options import WorkingSize, check_saturation

Saver = Callable[[Image.Image, Path], None]


@dataclass
class BatchResult:
    """One photo's outcome: written to `target`, or stopped by `error`."""

    source: Path
    target: Path
    error: Exception | None = None


def colorize_pipelined(
    colorizer: Colorizer,
    jobs: Iterable[tuple[Path, Path]],
    save: Saver,
    *,
    batch_size: int = 4,
    workers: int = 2,
    working_size: WorkingSize = None,
    saturation: float = 1.0,
    keep_aspect: bool = False,
    flip_average: bool = False,
    size_average: int | None = None,
    **options: Any,
) -> Iterator[BatchResult]:
    """Colorize each (source, target) job and `save(image, target)` it; yields results in input order.

    `options`: the colorizer's declared `extra_options`; a sampler draws one colouring per photo (as
    `Colorizer.colorize_batch`). `flip_average` and `size_average` as in `Colorizer.colorize`."""
    if batch_size < 1 or workers < 1:
        raise ValueError(f"batch_size and workers must be at least 1, got {batch_size} and {workers}.")
    check_saturation(saturation)
    if colorizer.draws_samples:
        options[NUM_SAMPLES] = 1
    resolved = colorizer.resolve_options(options)
    colorizer.working_side(working_size)  # a bad size fails before any photo is decoded
    second_size = colorizer.check_size_average(size_average, working_size)
    pending = iter(jobs)
    ahead = 2 * batch_size
    decoding: deque[tuple[Path, Path, Future[PreparedImage]]] = deque()
    finishing: deque[tuple[Path, Path, Future[None] | Exception]] = deque()

    def finish_and_save(prepared: PreparedImage, small: torch.Tensor, ab: torch.Tensor, target: Path) -> None:
        save(colorizer.finish(prepared, small, ab, saturation=saturation), target)

    def collect() -> BatchResult:
        source, target, outcome = finishing.popleft()
        if isinstance(outcome, Exception):
            return BatchResult(source, target, outcome)
        try:
            outcome.result()
        except (ValueError, OSError) as error:  # the pipeline's sentences, or writing the file
            return BatchResult(source, target, error)
        return BatchResult(source, target)

    with ThreadPoolExecutor(workers, thread_name_prefix="colorlab-batch") as pool:
        while True:
            while len(decoding) < ahead and (job := next(pending, None)) is not None:
                decoding.append((job[0], job[1], pool.submit(prepare_image, job[0])))
            if not decoding:
                break
            batch: list[tuple[Path, Path, PreparedImage | Exception]] = []
            while decoding and len(batch) < batch_size:
                source, target, future = decoding.popleft()
                try:
                    batch.append((source, target, future.result()))
                except (ValueError, OSError) as error:  # unreadable, too large, not an image
                    batch.append((source, target, error))
            ready = [(i, item[2]) for i, item in enumerate(batch) if isinstance(item[2], PreparedImage)]
            # rectangles of different aspects cannot share a network batch; squares (the default) always can
            groups = [[entry] for entry in ready] if keep_aspect else ([ready] if ready else [])
            futures: dict[int, Future[None]] = {}
            for group in groups:
                small = torch.cat(
                    [colorizer.working_lightness(p, working_size, keep_aspect=keep_aspect) for _, p in group]
                )
                ab = colorizer.predict_working_ab(
                    [p for _, p in group],
                    small,
                    flip_average=flip_average,
                    size_average=second_size,
                    keep_aspect=keep_aspect,
                    **resolved,
                )
                for row, (index, prepared) in enumerate(group):
                    futures[index] = pool.submit(
                        finish_and_save, prepared, small[row : row + 1], ab[row : row + 1], batch[index][1]
                    )
            for index, (source, target, item) in enumerate(batch):
                finishing.append((source, target, item if isinstance(item, Exception) else futures[index]))
            while len(finishing) > ahead:
                yield collect()
        while finishing:
            yield collect()
