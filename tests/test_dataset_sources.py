"""Every `datasets` source the trainer and judge.evaluate read, each made here from a few small photos.

.venv/bin/python -m pytest tests/test_dataset_sources.py -q -x

Parquet (one file and a folder of shards), csv / jsonl listing image paths, arrow, save_to_disk, image folders and
Hub ids (offline: unreachable); the image column found by its datasets.Image feature; and each kind of bad input
answered with one sentence that says the fix.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import load_photo
from train_support import make_photo_folder, run_trainer

from corpus.dataset_sources import DataError, load_splits, split_names
from judge import evaluate as ev
from trainer.data import ColorizationDataset, CropConfig, StreamingColorizationDataset

NAMES = ("coffee", "chelsea", "rocket", "astronaut")
SIDE = 32
IMAGE = datasets.Features({"picture": datasets.Image(), "label": datasets.Value("int64")})


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # datasets' builders write Arrow caches; keep them inside the test's folder.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets-cache")


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return make_photo_folder(tmp_path / "photos", photos=NAMES, max_side=SIDE)


def table(photos: Path, names: tuple[str, ...] = NAMES) -> datasets.Dataset:
    """A dataset whose image column is not called 'image' (found by its datasets.Image feature)."""
    rows = {"picture": [str(photos / f"{n}.jpg") for n in names], "label": list(range(len(names)))}
    return datasets.Dataset.from_dict(rows, features=IMAGE)


def first_sample(rows, column: str) -> dict:
    return ColorizationDataset(rows, image_column=column, crop=CropConfig(resolution=SIDE), train=False)[0]


def file_names(rows, column: str) -> list[str]:
    return [Path(row[column]["path"]).name for row in rows]


def test_a_parquet_file_and_its_image_column_found_by_feature(tmp_path, photos):
    table(photos).to_parquet(str(tmp_path / "shots.parquet"))
    train, validation, column = load_splits(str(tmp_path / "shots.parquet"), val_fraction=0.25, seed=0)
    assert column == "picture" and (len(train), len(validation)) == (3, 1)
    sample = first_sample(train, column)
    assert sample["L"].shape == (1, SIDE, SIDE) and sample["ab"].shape == (2, SIDE, SIDE)
    assert split_names(str(tmp_path / "shots.parquet")) == ["train"]
    with pytest.raises(DataError, match="one 'train' split: hold out part of it with --val_fraction"):
        load_splits(str(tmp_path / "shots.parquet"), val_split="validation")


def test_a_folder_of_parquet_shards_splits_by_file_name(tmp_path, photos):
    shards = tmp_path / "shards" / "data"
    shards.mkdir(parents=True)
    table(photos, NAMES[:2]).to_parquet(str(shards / "train-00000-of-00002.parquet"))
    table(photos, NAMES[2:3]).to_parquet(str(shards / "train-00001-of-00002.parquet"))
    table(photos, NAMES[3:]).to_parquet(str(shards / "validation-00000-of-00001.parquet"))
    (tmp_path / "shards" / "README.md").write_text("# a dataset card beside the data\n")
    assert split_names(str(tmp_path / "shards")) == ["train", "validation"]
    train, validation, column = load_splits(str(tmp_path / "shards"), val_split="validation")
    assert sorted(file_names(train, column)) == ["chelsea.jpg", "coffee.jpg", "rocket.jpg"]
    assert file_names(validation, column) == ["astronaut.jpg"]


def test_a_parquet_file_without_datasets_metadata(tmp_path, photos):
    # Written by plain pyarrow: images as {bytes, path} structs and as raw bytes, no datasets.Image feature.
    jpegs = [(photos / f"{n}.jpg").read_bytes() for n in NAMES[:2]]
    structs = pa.table({"image": [{"bytes": b, "path": f"{n}.jpg"} for b, n in zip(jpegs, NAMES, strict=False)]})
    pq.write_table(structs, tmp_path / "structs.parquet")
    train, _, column = load_splits(str(tmp_path / "structs.parquet"))
    assert column == "image" and first_sample(train, column)["ab"].shape == (2, SIDE, SIDE)
    pq.write_table(pa.table({"jpeg": jpegs, "caption": ["a", "b"]}), tmp_path / "bytes.parquet")
    train, _, column = load_splits(str(tmp_path / "bytes.parquet"), caption_column="caption")
    assert column == "jpeg" and first_sample(train, column)["L"].shape == (1, SIDE, SIDE)


def test_a_csv_lists_image_paths_relative_to_itself(tmp_path, photos, monkeypatch):
    rows = "".join(f"../photos/{name}.jpg,a photo of {name}\n" for name in NAMES)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "list.csv").write_text("file_name,caption\n" + rows)
    monkeypatch.chdir(photos)  # the working folder plays no part in resolving the paths
    train, _, column = load_splits(str(tmp_path / "meta" / "list.csv"), caption_column="caption")
    assert column == "file_name" and file_names(train, column) == [f"{name}.jpg" for name in NAMES]
    sample = ColorizationDataset(train, image_column=column, caption_column="caption", crop=CropConfig(SIDE))[0]
    assert sample["caption"].startswith("a photo of ")


def test_the_trainer_trains_on_a_csv_of_image_paths(tmp_path, capsys):
    photos = make_photo_folder(tmp_path / "photos")  # eight colour photos
    listed = "".join(f"photos/{path.name}\n" for path in sorted(photos.glob("*.jpg")))
    (tmp_path / "train.csv").write_text("file_name\n" + listed)
    argv = ["--config", "tiny", "--dataset", str(tmp_path / "train.csv"), "--output_dir", str(tmp_path / "out")]
    out = run_trainer([*argv, "--max_train_steps", "2", "--validation_steps", "2", "--checkpointing_steps", "2"])
    assert (out / "model.safetensors").is_file()
    assert "skipped 0 unreadable image(s)" in capsys.readouterr().out  # every listed path was found


def test_jsonl_shards_in_several_folders_each_read_paths_from_their_own_folder(tmp_path):
    # Both files say "../../../photo.jpg"; from their two depths that names two photos (outside the shard folder:
    # a folder with image files in it is read as an image folder).
    shards = tmp_path / "outer" / "inner" / "shards"
    for where, name in ((shards / "train", "coffee"), (shards / "train" / "deeper", "rocket")):
        where.mkdir(parents=True, exist_ok=True)
        (where / "rows.jsonl").write_text(json.dumps({"path": "../../../photo.jpg", "id": name}) + "\n")
        load_photo(name, SIDE).save((where / "../../../photo.jpg").resolve())
    train, _, column = load_splits(str(shards))
    assert column == "path" and split_names(str(shards)) == ["train"]
    assert sorted(Path(row[column]["path"]).parent.name for row in train) == ["inner", "outer"]


def test_a_streamed_jsonl_file(tmp_path, photos):
    lines = [json.dumps({"photo": f"{photos.name}/{name}.jpg"}) for name in NAMES]
    (tmp_path / "rows.jsonl").write_text("\n".join(lines) + "\n")
    train, _, column = load_splits(str(tmp_path / "rows.jsonl"), streaming=True, max_train_samples=3)
    stream = StreamingColorizationDataset(train, image_column=column, crop=CropConfig(resolution=SIDE))
    samples = list(stream)
    assert column == "photo" and len(samples) == 3 and not any(s["skipped_corrupt"] for s in samples)


def test_an_arrow_file(tmp_path, photos):
    table(photos).save_to_disk(str(tmp_path / "saved"))
    shutil.copy(next((tmp_path / "saved").glob("*.arrow")), tmp_path / "shots.arrow")
    train, _, column = load_splits(str(tmp_path / "shots.arrow"))
    assert column == "picture" and file_names(train, column) == [f"{name}.jpg" for name in NAMES]


def test_save_to_disk_with_splits_plain_and_streamed(tmp_path, photos):
    saved = datasets.DatasetDict({"train": table(photos, NAMES[:3]), "validation": table(photos, NAMES[3:])})
    saved.save_to_disk(str(tmp_path / "saved"))
    assert split_names(str(tmp_path / "saved")) == ["train", "validation"]
    train, validation, column = load_splits(str(tmp_path / "saved"), val_split="validation")
    assert column == "picture" and (len(train), len(validation)) == (3, 1)
    stream, _, _ = load_splits(str(tmp_path / "saved"), streaming=True)
    assert len(list(StreamingColorizationDataset(stream, image_column=column, crop=CropConfig(SIDE)))) == 3
    with pytest.raises(DataError, match=r"has no split 'test'; its splits are \['train', 'validation'\]"):
        load_splits(str(tmp_path / "saved"), split="test")


def test_an_image_folder_ignores_a_stray_data_file(photos):
    (photos / "notes.csv").write_text("who,when\nme,today\n")
    train, _, column = load_splits(str(photos))
    assert column == "image" and sorted(file_names(train, column)) == sorted(f"{name}.jpg" for name in NAMES)


def test_several_image_columns_need_image_column(tmp_path, photos):
    both = table(photos).add_column("after", [str(photos / f"{n}.jpg") for n in reversed(NAMES)])
    both.cast_column("after", datasets.Image()).save_to_disk(str(tmp_path / "pairs"))
    with pytest.raises(DataError, match=r"2 image columns \['picture', 'after'\]; choose one with --image_column"):
        load_splits(str(tmp_path / "pairs"))
    train, _, column = load_splits(str(tmp_path / "pairs"), image_column="after")
    assert column == "after" and file_names(train, column)[0] == f"{NAMES[-1]}.jpg"


def test_a_column_that_is_not_images_is_refused_with_the_choices(tmp_path, photos):
    table(photos).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(DataError, match=r"'label' holds int64 values, not images; choose one of \['picture'\]"):
        load_splits(str(tmp_path / "saved"), image_column="label")
    (tmp_path / "numbers.csv").write_text("a,b\n1,x\n2,y\n")
    with pytest.raises(DataError, match=r"no image column \(its columns are \['a', 'b'\]\); name the column"):
        load_splits(str(tmp_path / "numbers.csv"))
    (tmp_path / "missing.csv").write_text("file_name\nnowhere/coffee.jpg\n")
    with pytest.raises(DataError, match=r"'.*nowhere/coffee\.jpg', which is not a file \(relative paths are read"):
        load_splits(str(tmp_path / "missing.csv"))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "notes.txt", r"it is a '\.txt' file, not a dataset; pass an image folder, a data file"),
        (lambda p: p / "photos" / "coffee.jpg", "it is a single image, not a dataset"),
        (lambda p: p / "empty", "the folder holds no images and no data files"),
        (lambda p: p / "mixed", r"mixes data files of several formats \(\.csv, \.parquet\); keep one format"),
        (lambda p: p / "nowhere" / "shots.parquet", "no such file or folder; pass an image folder"),
        (lambda p: p / "broken.jsonl", r"\(JSON parse error: .*\); fix or remove the broken file\.$"),
    ],
)
def test_bad_sources_are_one_sentence(tmp_path, photos, make, message):
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "broken.jsonl").write_text('{"file_name": "coffee.jpg"}\nnot json\n')
    (tmp_path / "empty").mkdir()
    (tmp_path / "mixed").mkdir()
    table(photos).to_parquet(str(tmp_path / "mixed" / "a.parquet"))
    (tmp_path / "mixed" / "b.csv").write_text("file_name\n../photos/coffee.jpg\n")
    with pytest.raises(DataError, match=message) as error:
        load_splits(str(make(tmp_path)))
    assert "\n" not in str(error.value)


def test_a_missing_corpus_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a fresh clone: no data/corpus
    for name in ("data/corpus", "data/corpus/"):
        with pytest.raises(DataError, match=r"build it with `python -m corpus\.photos build --out data/corpus`\.$"):
            load_splits(name)


def test_an_unreachable_hub_id_is_one_sentence():
    # conftest sets HF_HUB_OFFLINE=1: the id is tried the way datasets tries it, and cannot be reached.
    with pytest.raises(DataError, match=r"load dataset 'someone/photos' \(.*Hub dataset id reachable") as error:
        load_splits("someone/photos")
    assert "\n" not in str(error.value)
    with pytest.raises(DataError, match="Could not list the splits of dataset 'someone/photos'"):
        split_names("someone/photos")


def test_evaluate_reads_the_column_named_by_image_column(tmp_path, photos, capsys):
    from models.registry import create_model

    both = table(photos).add_column("gray", [str(photos / f"{n}.jpg") for n in NAMES])
    both.cast_column("gray", datasets.Image()).to_parquet(str(tmp_path / "pairs.parquet"))
    create_model("unet_tiny").save_pretrained(tmp_path / "model")
    argv = ["--models", str(tmp_path / "model"), "--dataset", str(tmp_path / "pairs.parquet"), "--limit", "2"]
    argv += ["--image-size", "32", "--n-boot", "10", "--no-fid", "--no-progress", "--grid-images", "2"]
    assert ev.main([*argv, "--out", str(tmp_path / "refused")]) == 1
    assert "choose one with --image_column" in capsys.readouterr().err
    assert ev.main([*argv, "--image_column", "picture", "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["config"]["image_column"] == "picture" and report["config"]["split"] == "train"
