"""Training data pipeline: dataset loading, bad-file skipping, grayscale detection, deterministic augmentation.

.venv/bin/python -m pytest tests/test_train_data.py -q -x
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from train_support import CORRUPT_NAME, GRAYSCALE_NAME, make_photo_folder

from corpus.dataset_sources import DataError, load_splits
from models.color import model_space_to_rgb
from trainer.data import ColorizationDataset, CropConfig, collate, crop_to_tensor, is_grayscale, random_crop_box

RESOLUTION = 32


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # datasets' builders write Arrow caches; keep them inside the test's folder, not in ~/.cache.
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets-cache")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Three colour photos, one truncated JPEG and one black-and-white photo stored as RGB."""
    return make_photo_folder(
        tmp_path_factory.mktemp("photos"), photos=("astronaut", "coffee", "chelsea"), corrupt=True, grayscale=True
    )


def dataset(folder: Path, **kwargs) -> ColorizationDataset:
    train, _, column = load_splits(str(folder))
    kwargs.setdefault("crop", CropConfig(resolution=RESOLUTION))
    return ColorizationDataset(train, image_column=column, **kwargs)


def file_name(data: ColorizationDataset, index: int) -> str:
    return Path(data.data[index][data.image_column]["path"]).name


def all_samples(data: ColorizationDataset) -> list[dict]:
    return [data[position] for position in range(len(data))]


def test_grayscale_detection_on_real_photos(photo, tmp_path):
    for name in ("astronaut", "coffee", "chelsea"):
        assert not is_grayscale(photo(name, 96))
    gray = photo("camera", 96)
    assert is_grayscale(gray)  # mode L
    gray.convert("RGB").save(tmp_path / "gray.jpg", quality=75)  # B&W stored as RGB, with JPEG noise
    with Image.open(tmp_path / "gray.jpg") as image:
        assert image.mode == "RGB" and is_grayscale(image)


def test_samples_are_normalised_lab_of_the_photo(folder):
    data = dataset(folder, train=False)  # validation mode: the whole photo squashed to a square
    sample = next(s for s in all_samples(data) if file_name(data, s["index"]) == "coffee.jpg")
    assert sample["L"].shape == (1, RESOLUTION, RESOLUTION) and sample["ab"].shape == (2, RESOLUTION, RESOLUTION)
    assert sample["L"].min() >= -1 and sample["L"].max() <= 1 and sample["ab"].abs().max() <= 1
    with Image.open(folder / "coffee.jpg") as image:
        expected = np.asarray(image.convert("RGB").resize((RESOLUTION, RESOLUTION), Image.Resampling.BICUBIC))
    rebuilt = model_space_to_rgb(sample["L"][None], sample["ab"][None])[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(rebuilt - expected).mean() < 2.0  # Lab round trip of the same pixels (gamut clipping aside)


def test_corrupt_file_is_replaced_by_the_next_good_one_and_reported(folder):
    data = dataset(folder, train=True)
    samples = all_samples(data)
    assert len(samples) == len(data) == 5  # batches keep their size
    corrupt = {file_name(data, i) for s in samples for i in s["skipped_corrupt"]}
    assert corrupt == {CORRUPT_NAME}
    assert all(file_name(data, s["index"]) != CORRUPT_NAME for s in samples)
    assert not any(s["skipped_grayscale"] for s in samples)  # kept unless asked
    assert GRAYSCALE_NAME in {file_name(data, s["index"]) for s in samples}


def test_drop_grayscale_skips_black_and_white_photos(folder):
    data = dataset(folder, train=True, drop_grayscale=True)
    samples = all_samples(data)
    assert {file_name(data, i) for s in samples for i in s["skipped_grayscale"]} == {GRAYSCALE_NAME}
    assert GRAYSCALE_NAME not in {file_name(data, s["index"]) for s in samples}
    batch = collate(samples)
    assert batch["L"].shape == (5, 1, RESOLUTION, RESOLUTION)
    # A bad file can be met from two positions in an epoch; the trainer counts distinct indices.
    assert {file_name(data, i) for i in batch["skipped_grayscale"]} == {GRAYSCALE_NAME}


def test_a_dataset_of_only_bad_files_fails_with_a_sentence(tmp_path):
    folder = make_photo_folder(tmp_path / "bad", photos=("coffee",), corrupt=True)
    (folder / "coffee.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="unreadable or grayscale; the dataset looks broken"):
        dataset(folder)[0]


def test_augmentation_depends_only_on_seed_epoch_and_index(folder):
    first, again = dataset(folder, seed=3), dataset(folder, seed=3)
    for position in range(len(first)):
        a, b = first[position], again[position]
        assert a["index"] == b["index"] and torch.equal(a["ab"], b["ab"])
    epoch0 = all_samples(first)
    first.set_epoch(1)
    epoch1 = all_samples(first)
    assert [s["index"] for s in epoch1] != [s["index"] for s in epoch0]  # a new shuffle each epoch
    crops0, crops1 = ({s["index"]: s["ab"] for s in samples} for samples in (epoch0, epoch1))
    assert all(not torch.equal(crops0[i], crops1[i]) for i in crops0)  # and new crops
    order = [s["index"] for s in all_samples(dataset(folder, train=False))]
    assert order == sorted(order)  # validation keeps the dataset's order


def test_dataloader_workers_do_not_change_the_batches(folder):
    data = dataset(folder, train=True, drop_grayscale=True)
    data.set_epoch(2)

    def batches(workers: int) -> list[dict]:
        loader = torch.utils.data.DataLoader(data, batch_size=2, collate_fn=collate, num_workers=workers)
        return list(loader)

    for single, parallel in zip(batches(0), batches(2), strict=True):
        assert torch.equal(single["index"], parallel["index"])
        assert torch.equal(single["L"], parallel["L"]) and torch.equal(single["ab"], parallel["ab"])
        assert single["skipped_corrupt"] == parallel["skipped_corrupt"]


def test_random_crop_box_stays_inside_and_covers_the_requested_area():
    crop = CropConfig(resolution=64, scale=(0.25, 0.5))
    rng = np.random.default_rng(0)
    for _ in range(50):
        left, top, right, bottom = random_crop_box(400, 300, rng, crop)
        assert 0 <= left < right <= 400 and 0 <= top < bottom <= 300
        assert 0.25 - 1e-6 <= (right - left) * (bottom - top) / (400 * 300) <= 0.5 + 1e-6
    # An impossible aspect falls back to the whole image rather than failing.
    assert random_crop_box(10, 1000, rng, CropConfig(ratio=(3.0, 4.0), scale=(0.9, 1.0))) == (0.0, 0.0, 10.0, 1000.0)


def test_crop_to_tensor_resizes_and_flips(photo):
    image = photo("astronaut", 128)
    plain = crop_to_tensor(image, (0.0, 0.0, 128.0, 128.0), 32, flip=False)
    flipped = crop_to_tensor(image, (0.0, 0.0, 128.0, 128.0), 32, flip=True)
    assert plain.shape == (3, 32, 32) and plain.min() >= 0 and plain.max() <= 1
    assert torch.equal(flipped, plain.flip(-1))


def test_load_splits_holds_out_a_seeded_validation_fraction(tmp_path):
    folder = make_photo_folder(tmp_path / "photos", max_side=48)
    train, validation, column = load_splits(str(folder), val_fraction=0.25, seed=0)
    names = lambda split: {Path(r[column]["path"]).name for r in split}  # noqa: E731
    assert column == "image" and len(validation) == 2 and len(train) == 6
    assert not names(train) & names(validation)
    _, again_validation, _ = load_splits(str(folder), val_fraction=0.25, seed=0)
    assert names(again_validation) == names(validation)
    limited, _, _ = load_splits(str(folder), max_train_samples=3)
    assert len(limited) == 3


def test_every_photo_of_a_flat_folder_is_training_data_whatever_its_name(tmp_path):
    # datasets infers splits from file names too: these two names alone used to become the whole dataset.
    folder = make_photo_folder(tmp_path / "photos", photos=("coffee", "chelsea", "rocket"), max_side=32)
    (folder / "coffee.jpg").rename(folder / "beach_train-2.jpg")
    (folder / "chelsea.jpg").rename(folder / "holiday_test-1.jpg")
    train, validation, column = load_splits(str(folder))
    assert validation is None
    names = sorted(Path(r[column]["path"]).name for r in train)
    assert names == ["beach_train-2.jpg", "holiday_test-1.jpg", "rocket.jpg"]


def test_split_subfolders_are_splits(tmp_path):
    make_photo_folder(tmp_path / "photos" / "train", photos=("coffee", "chelsea"), max_side=32)
    make_photo_folder(tmp_path / "photos" / "validation", photos=("rocket",), max_side=32)
    train, validation, _ = load_splits(str(tmp_path / "photos"), val_split="validation")
    assert (len(train), len(validation)) == (2, 1)


def test_saved_datasets_load_with_their_image_column(tmp_path, photo):
    import datasets

    images = [photo(name, 48) for name in ("coffee", "chelsea")]
    saved = datasets.Dataset.from_dict({"picture": images}, features=datasets.Features({"picture": datasets.Image()}))
    saved.save_to_disk(str(tmp_path / "saved"))
    train, _, column = load_splits(str(tmp_path / "saved"))  # found by its datasets.Image feature, not its name
    assert column == "picture"
    sample = ColorizationDataset(train, image_column=column, crop=CropConfig(resolution=RESOLUTION))[0]
    assert sample["ab"].shape == (2, RESOLUTION, RESOLUTION)


def test_dataset_problems_are_one_sentence(tmp_path):
    with pytest.raises(DataError, match="Could not load dataset"):
        load_splits(str(tmp_path / "missing"))
    folder = make_photo_folder(tmp_path / "photos", photos=("coffee",), max_side=32)
    with pytest.raises(DataError, match="--image_column 'photo' is not in the dataset"):
        load_splits(str(folder), image_column="photo")
    with pytest.raises(DataError, match="--val_fraction must be between 0 and 1"):
        load_splits(str(folder), val_fraction=1.5)
