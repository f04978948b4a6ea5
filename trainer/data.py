"""Datasets for training colorizers: rows of any `datasets` source (corpus.dataset_sources) -> {"L", "ab"} tensors.

    train, val, column = load_splits("path/or/hub-id", val_fraction=0.1)  # corpus.dataset_sources; undecoded images
    ColorizationDataset(train, image_column=column, crop=CropConfig(resolution=256))[i] -> {"L": (1,H,W), "ab": ...}

Determinism is by construction: the epoch's shuffle and every sample's crop/flip come from a
generator seeded with (seed, epoch, index). A resumed run (which skips the batches it already
saw) therefore sees exactly the samples and augmentations an uninterrupted run would, whatever
the number of DataLoader workers or DDP ranks.

With a `compositor` (`--composite_cutouts`), training crops get photographic cut-outs pasted on them
(trainer.compositing), from a generator seeded with (seed, epoch, index, 2); validation never does.

Unreadable files and (with `drop_grayscale`) grayscale photos are replaced by the next good
sample, so batches keep their size (DDP ranks stay in step); each replacement is reported in the
sample's "skipped_corrupt" / "skipped_grayscale" lists so the trainer can count and log them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from corpus.dataset_sources import DataError
from models.color import rgb_to_model_space
from models.imageio import ImageInputError, is_grayscale_mode, open_image
from trainer.compositing import Compositor

_MAX_REPLACEMENTS = 16  # consecutive bad files tolerated before a sample gives up (a broken dataset)


@dataclass(frozen=True)
class CropConfig:
    resolution: int = 256
    scale: tuple[float, float] = (0.25, 1.0)  # fraction of the image area a training crop covers
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = True
    # Multi-scale training: each batch of `batch_size` consecutive positions shares one side drawn from
    # resolution..max_resolution in steps of `size_multiple`, so a colorizer meets every working size it serves.
    max_resolution: int | None = None
    size_multiple: int = 16
    batch_size: int = 1

    @property
    def sides(self) -> list[int]:
        top = self.max_resolution or self.resolution
        return list(range(self.resolution, top + 1, self.size_multiple)) or [self.resolution]

    def side_for_batch(self, seed: int, epoch: int, group: int) -> int:
        sides = self.sides
        if len(sides) == 1:
            return sides[0]
        return sides[int(np.random.default_rng([seed, epoch, group, 1]).integers(len(sides)))]


# --- per-sample transforms ------------------------------------------------------------------------------
def _open_record(record: Any, *, draft_size: tuple[int, int] | None = None) -> Image.Image:
    if isinstance(record, dict):
        source = record.get("bytes") or record.get("path")
        if not source:
            raise ImageInputError("the dataset record holds neither image bytes nor a path.")
        return open_image(source, draft_size=draft_size)
    if isinstance(record, Image.Image | str | os.PathLike):
        return open_image(record, draft_size=draft_size)
    raise ImageInputError(f"unsupported image record of type {type(record).__name__}.")


def is_grayscale(image: Image.Image, *, tolerance: float = 2.0) -> bool:
    """True when a photo has (almost) no chroma: a black-and-white picture stored as RGB."""
    if is_grayscale_mode(image):
        return True
    thumbnail = image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR)
    array = np.asarray(thumbnail).astype(np.int16)
    spread = np.abs(array[..., 0] - array[..., 1]) + np.abs(array[..., 1] - array[..., 2])
    return float(np.percentile(spread, 99)) <= 3 * tolerance and float(spread.mean()) <= tolerance


def random_crop_box(width: int, height: int, rng: np.random.Generator, crop: CropConfig) -> tuple[float, ...]:
    """Inception-style random resized crop: area fraction in `scale`, aspect in `ratio`; whole image as fallback."""
    area = width * height
    for _ in range(10):
        target_area = area * rng.uniform(*crop.scale)
        aspect = float(np.exp(rng.uniform(np.log(crop.ratio[0]), np.log(crop.ratio[1]))))
        crop_w = np.sqrt(target_area * aspect)
        crop_h = np.sqrt(target_area / aspect)
        if crop_w <= width and crop_h <= height:
            left = rng.uniform(0, width - crop_w)
            top = rng.uniform(0, height - crop_h)
            return (left, top, left + crop_w, top + crop_h)
    return (0.0, 0.0, float(width), float(height))


def crop_to_tensor(image: Image.Image, box: tuple[float, ...], resolution: int, *, flip: bool) -> torch.Tensor:
    """Crop `box` and resize to resolution^2 (small images are upscaled); returns RGB (3, H, W) in [0, 1]."""
    rgb = image.convert("RGB")
    patch = rgb.resize((resolution, resolution), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)
    if flip:
        patch = patch.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return torch.from_numpy(np.asarray(patch).copy()).permute(2, 0, 1).float().div_(255.0)


class _PairMaker:
    """Turns one dataset row into a training pair; shared by the map-style and the streaming dataset."""

    def __init__(
        self,
        *,
        image_column: str = "image",
        caption_column: str | None = None,
        crop: CropConfig | None = None,
        train: bool = True,
        seed: int = 0,
        drop_grayscale: bool = False,
        compositor: Compositor | None = None,
    ) -> None:
        self.image_column = image_column
        self.caption_column = caption_column
        self.crop = crop or CropConfig()
        self.train = train
        self.seed = seed
        self.drop_grayscale = drop_grayscale
        # --composite_cutouts: cut-outs pasted onto training crops only (validation is never composited)
        self.compositor = compositor if train else None
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _transform(self, image: Image.Image, rng: np.random.Generator, resolution: int) -> torch.Tensor:
        width, height = image.size
        if self.train:
            box = random_crop_box(width, height, rng, self.crop)
            flip = bool(self.crop.hflip and rng.random() < 0.5)
        else:  # validation: the whole image squashed to a square, as the inference pipeline does
            box, flip = (0.0, 0.0, float(width), float(height)), False
        return crop_to_tensor(image, box, resolution, flip=flip)

    def _pair(self, row: dict[str, Any], index: int, position: int = 0) -> dict[str, Any] | str:
        """The sample for `row` (augmented with a generator seeded by (seed, epoch, index)), or why it was skipped.

        `position` in the epoch's order picks the batch, and so the side of a multi-scale batch.
        """
        resolution = self.crop.resolution
        if self.train:
            resolution = self.crop.side_for_batch(self.seed, self.epoch, position // self.crop.batch_size)
        # Training crops are downsampled anyway: let JPEGs decode at a reduced scale.
        draft = (resolution * 2, resolution * 2) if self.train else None
        try:
            image = _open_record(row[self.image_column], draft_size=draft)
        except (ImageInputError, OSError):
            return "corrupt"
        if self.drop_grayscale and is_grayscale(image):
            return "grayscale"
        rgb = self._transform(image, np.random.default_rng([self.seed, self.epoch, index]), resolution)
        if self.compositor is not None:
            # Its own generator, seeded per (seed, epoch, index): the crop and flip are the same with and without
            # composites (a fair A/B), and a resumed run composites exactly what an uninterrupted one would.
            rgb, _ = self.compositor(rgb, np.random.default_rng([self.seed, self.epoch, index, 2]))
        l_norm, ab_norm = rgb_to_model_space(rgb)
        sample: dict[str, Any] = {"L": l_norm, "ab": ab_norm, "index": index}
        if self.caption_column:
            sample["caption"] = str(row.get(self.caption_column) or "")
        return sample


def _broken_dataset(where: str) -> DataError:
    return DataError(
        f"{_MAX_REPLACEMENTS} consecutive images {where} are unreadable or grayscale; "
        "the dataset looks broken (check its image column and files)."
    )


class ColorizationDataset(_PairMaker, torch.utils.data.Dataset):
    """Map-style dataset of (L, ab) training pairs with deterministic per-(epoch, index) augmentation."""

    def __init__(self, hf_dataset: Any, **options: Any) -> None:
        super().__init__(**options)
        self.data = hf_dataset
        if len(self.data) == 0:
            raise DataError("The dataset split is empty; check --split / --val_fraction / --max_train_samples.")

    def __len__(self) -> int:
        return len(self.data)

    def _order(self) -> np.ndarray:
        """This epoch's order, computed once per epoch (not per sample: that would be quadratic in the epoch)."""
        if getattr(self, "_order_epoch", None) != self.epoch:
            count = len(self.data)
            rng = np.random.default_rng([self.seed, self.epoch])
            self._cached_order = rng.permutation(count) if self.train else np.arange(count)
            self._order_epoch = self.epoch
        return self._cached_order

    def __getitem__(self, position: int) -> dict[str, Any]:
        order = self._order()
        skipped: dict[str, list[int]] = {"corrupt": [], "grayscale": []}
        for attempt in range(_MAX_REPLACEMENTS):
            index = int(order[(position + attempt) % len(order)])
            sample = self._pair(self.data[index], index, position)
            if isinstance(sample, str):
                skipped[sample].append(index)
                continue
            return {**sample, "skipped_corrupt": skipped["corrupt"], "skipped_grayscale": skipped["grayscale"]}
        raise _broken_dataset(f"around position {position}")


class StreamingColorizationDataset(_PairMaker, torch.utils.data.IterableDataset):
    """`--streaming`: pairs from a `datasets.IterableDataset`, read once in order, never held whole in memory.

    The epoch's order is datasets' own buffered shuffle seeded with (seed, epoch); a sample's augmentation is
    seeded by its position in that order, so a resumed run (accelerate replays and discards the batches it
    already saw) continues exactly. Skipped files are reported with the next good sample; positions stand in for
    indices in those reports.
    """

    def __init__(self, hf_dataset: Any, *, shuffle_buffer: int = 1000, **options: Any) -> None:
        super().__init__(**options)
        self.data = hf_dataset
        self.shuffle_buffer = shuffle_buffer

    def __iter__(self) -> Any:
        stream = self.data
        if self.train:
            stream = stream.shuffle(seed=self.seed, buffer_size=self.shuffle_buffer)
            stream.set_epoch(self.epoch)
        skipped: dict[str, list[int]] = {"corrupt": [], "grayscale": []}
        for position, row in enumerate(stream):
            sample = self._pair(row, position, position)
            if isinstance(sample, str):
                skipped[sample].append(position)
                if len(skipped["corrupt"]) + len(skipped["grayscale"]) >= _MAX_REPLACEMENTS:
                    raise _broken_dataset(f"before stream position {position}")
                continue
            yield {**sample, "skipped_corrupt": skipped["corrupt"], "skipped_grayscale": skipped["grayscale"]}
            skipped = {"corrupt": [], "grayscale": []}


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    batch: dict[str, Any] = {
        "L": torch.stack([s["L"] for s in samples]),
        "ab": torch.stack([s["ab"] for s in samples]),
        "index": torch.tensor([s["index"] for s in samples]),
        "skipped_corrupt": [i for s in samples for i in s["skipped_corrupt"]],
        "skipped_grayscale": [i for s in samples for i in s["skipped_grayscale"]],
    }
    if "caption" in samples[0]:
        batch["caption"] = [s["caption"] for s in samples]
    return batch


def prior_batches(dataset: ColorizationDataset | StreamingColorizationDataset, *, count: int = 256) -> list[Any]:
    """The ab planes of the first `count` training samples of epoch 0, for estimating the colour prior.

    Always epoch 0, whatever epoch a resumed run is in, so a resumed run derives the same class weights.
    """
    saved_epoch = dataset.epoch
    dataset.set_epoch(0)
    try:
        if isinstance(dataset, StreamingColorizationDataset):
            planes = []
            for sample in dataset:
                planes.append(sample["ab"][None])
                if len(planes) >= count:
                    break
            return planes
        return [dataset[position]["ab"][None] for position in range(min(count, len(dataset)))]
    finally:
        dataset.set_epoch(saved_epoch)
