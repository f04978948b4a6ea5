"""Trainer faults answered in one sentence (trainer/preflight.py): a full disk or unwritable folder with the
checkpoints intact, a colour dataset of black-and-white photos, and a dataset's own validation split."""

from __future__ import annotations

import errno
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from train_support import TRAIN_SCRIPT, make_photo_folder, run_cli, run_trainer, trainer_env

from trainer.checkpoints import COMPLETE_MARKER, list_checkpoints
from trainer.preflight import OutputNotWritable, check_output_dir, dataset_splits, describe_write_error

GRAY_PHOTOS = ("camera", "moon", "coins", "page", "text")  # scikit-image's real black-and-white photographs


def tiny(dataset: Path, output_dir: Path, *extra: str) -> list[str]:
    return ["--config", "tiny", "--dataset", str(dataset), "--output_dir", str(output_dir), *extra]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return make_photo_folder(tmp_path_factory.mktemp("photos"))


def test_a_dataset_of_black_and_white_photos_is_refused_unless_allowed(tmp_path: Path, capsys) -> None:
    gray = make_photo_folder(tmp_path / "gray", photos=GRAY_PHOTOS)
    assert run_cli(tiny(gray, tmp_path / "out", "--val_fraction", "0", "--max_train_steps", "1")) == 1
    err = capsys.readouterr().err
    assert "5 of 5 sampled photos in" in err and "are black-and-white" in err and "--allow_grayscale" in err
    assert "Traceback" not in err and not list_checkpoints(tmp_path / "out")
    allowed = ["--val_fraction", "0", "--max_train_steps", "1", "--allow_grayscale"]
    assert run_cli(tiny(gray, tmp_path / "allowed", *allowed)) == 0


def test_a_few_black_and_white_photos_in_a_colour_dataset_are_fine(tmp_path: Path) -> None:
    mixed = make_photo_folder(tmp_path / "mixed", grayscale=True)  # eight colour photos and one gray
    assert run_cli(tiny(mixed, tmp_path / "out", "--val_fraction", "0", "--max_train_steps", "1")) == 0


@pytest.fixture
def split_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "split"
    make_photo_folder(folder / "train", photos=("astronaut", "coffee", "chelsea", "rocket"))
    make_photo_folder(folder / "validation", photos=("colorwheel", "retina"))
    return folder


def test_the_datasets_validation_split_is_used_and_the_log_says_so(split_folder: Path, tmp_path, capsys) -> None:
    assert dataset_splits(str(split_folder)) == ["train", "validation"]
    out = run_trainer(tiny(split_folder, tmp_path / "out", "--val_fraction", "0", "--max_train_steps", "3"))
    assert "Validating on the dataset's 'validation' split" in capsys.readouterr().out
    assert (out / "validation" / "loss_curves.png").is_file()


def test_an_empty_val_split_opts_out(split_folder: Path, tmp_path, capsys) -> None:
    argv = tiny(split_folder, tmp_path / "out", "--val_fraction", "0", "--val_split", "", "--max_train_steps", "3")
    out = run_trainer(argv)
    assert "Validating on" not in capsys.readouterr().out and not (out / "validation").exists()


def test_dataset_splits_of_flat_and_saved_datasets(photos: Path, tmp_path: Path) -> None:
    import datasets

    assert dataset_splits(str(photos)) == ["train"]
    saved = tmp_path / "saved"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"x": [1]}), "validation": datasets.Dataset.from_dict({"x": [2]})}
    ).save_to_disk(str(saved))
    assert dataset_splits(str(saved)) == ["train", "validation"]


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (errno.ENOSPC, "the disk (or your quota) is full; free some space"),
        (errno.EDQUOT, "the disk (or your quota) is full"),
        (errno.EROFS, "it is on a read-only file system; pass a writable --output_dir"),
        (errno.EACCES, "permission denied; make it writable for this user or pass another --output_dir"),
    ],
)
def test_write_errors_name_the_folder_and_the_fix(code: int, says: str) -> None:
    error = OSError(code, "message from the OS", "/runs/pix2pix/checkpoint-6.tmp/optimizer.bin")
    sentence = describe_write_error(error, "/runs/pix2pix")
    assert sentence.startswith("Could not write to /runs/pix2pix/checkpoint-6.tmp: ") and says in sentence
    assert sentence.endswith("rerun with --resume_from_checkpoint latest afterwards.")


def test_an_output_dir_that_cannot_be_created_fails_before_training(tmp_path: Path, photos: Path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputNotWritable, match=r"^Could not read or write .*a-file"):
        check_output_dir(blocker / "out")
    assert run_cli(tiny(photos, blocker / "out", "--val_fraction", "0")) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Could not read or write") and "Traceback" not in err


def _limit_file_size() -> None:
    # A real write failure, not a mock: the kernel refuses to grow any file past 64 KB in the child (EFBIG, as a
    # full quota would); Python ignores SIGXFSZ, so the write raises OSError instead of killing the process.
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))


def test_a_full_disk_mid_run_is_one_sentence_and_the_checkpoints_survive(tmp_path: Path, photos: Path) -> None:
    out = tmp_path / "out"
    run_trainer(tiny(photos, out, "--val_fraction", "0", "--max_train_steps", "3"))
    [saved] = list_checkpoints(out)
    before = {path.name: path.read_bytes() for path in saved.iterdir() if path.is_file()}
    assert max(len(data) for data in before.values()) > 64 * 1024  # the next checkpoint cannot be written whole

    argv = tiny(photos, out, "--val_fraction", "0", "--max_train_steps", "6", "--resume_from_checkpoint", "latest")
    result = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *argv],
        env=trainer_env(tmp_path / "hf-home"),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        preexec_fn=_limit_file_size,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    error = re.search(r"error: (.*)", result.stderr)  # after the progress bar, which ends without a newline
    assert error and error.group(1).startswith(f"Could not write to {out}"), result.stderr[-2000:]
    assert "is full" in error.group(1)
    assert "Traceback" not in result.stderr
    assert [path.name for path in list_checkpoints(out)] == [saved.name]  # the broken save was never published
    assert {path.name: path.read_bytes() for path in saved.iterdir() if path.is_file()} == before
    assert (saved / COMPLETE_MARKER).exists()

    resumed = run_trainer(argv)  # space freed: the run continues from the intact checkpoint
    assert [path.name for path in list_checkpoints(resumed)] == ["checkpoint-3", "checkpoint-6"]


def test_dataset_splits_of_a_shard_folder_and_a_missing_corpus(tmp_path: Path) -> None:
    import datasets

    shards = tmp_path / "shards"
    shards.mkdir()
    datasets.Dataset.from_dict({"x": [1]}).to_parquet(str(shards / "train-00000-of-00001.parquet"))
    datasets.Dataset.from_dict({"x": [2]}).to_parquet(str(shards / "validation-00000-of-00001.parquet"))
    assert dataset_splits(str(shards)) == ["train", "validation"]  # so the trainer validates on its own split
    assert dataset_splits(str(tmp_path / "data" / "corpus")) is None
