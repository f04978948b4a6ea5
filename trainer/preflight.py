"""Checks the trainer runs before (and around) training, each failing with one sentence that says what to do.

    note = use_validation_split(args)             # a dataset's own validation split, when none was chosen
    check_output_dir(args.output_dir)             # writable now, not after an hour of training
    check_colour_photos(train_dataset, args)      # a colour dataset of mostly black-and-white photos is refused
    message = describe_write_error(error, args.output_dir)   # disk full / read-only / permission, as a sentence

Why: a read-only output folder or a full disk ended in a traceback (the data stayed safe and resume stayed exact:
checkpoints are written to a temporary name and renamed, so a failed write never replaces a good one); a dataset
of grayscale photos trained silently, with metrics that look better than on colour data (the targets are gray);
and a dataset with a `validation/` split but no --val_split ran no validation at all.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
from pathlib import Path
from typing import Any

from corpus.dataset_sources import DataError, split_names
from trainer.config import TrainingConfig
from trainer.data import _open_record, is_grayscale

GRAYSCALE_SAMPLE = 48  # photos looked at; decoding 48 photos costs well under a second
GRAYSCALE_REFUSE_SHARE = 0.5  # "mostly grayscale"
VALIDATION_SPLIT = "validation"
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EROFS}
_FORBIDDEN = {errno.EACCES, errno.EPERM}


class OutputNotWritable(RuntimeError):
    """The output folder cannot be written; the message says which and how to fix it."""


# --- validation split -----------------------------------------------------------------------------------------


def dataset_splits(dataset: str, config: str | None = None) -> list[str] | None:
    """The split names of any source the trainer reads (`corpus.dataset_sources.split_names`: image folders, data
    files and shard folders, save_to_disk folders, Hub ids from the cache or network); None when they cannot be
    listed (offline, private, unknown or missing): then there is nothing to say about its splits."""
    try:
        return split_names(dataset, config) or ["train"]
    except DataError:
        return None


def use_validation_split(args: TrainingConfig) -> str:
    """Set `args.val_split` to the dataset's own validation split when neither --val_split nor --val_fraction chose
    one; returns the log line saying so ('' when nothing changed). `--val_split ""` opts out."""
    if args.val_split is not None or (args.val_fraction or 0) > 0:
        return ""
    splits = dataset_splits(args.dataset, args.dataset_config) or []
    if VALIDATION_SPLIT not in splits or args.split == VALIDATION_SPLIT:
        return ""
    args.val_split = VALIDATION_SPLIT
    return (
        f"Validating on the dataset's '{VALIDATION_SPLIT}' split (no --val_split or --val_fraction was given; "
        "pass --val_split '' to train without validation)."
    )


# --- output folder ----------------------------------------------------------------------------------------------


def describe_write_error(error: OSError, output_dir: str | os.PathLike[str]) -> str:
    """One sentence for a failed write: which folder, why, and what to do (checkpoints already written are intact)."""
    where = Path(error.filename).parent if error.filename else Path(output_dir)
    resume = "; checkpoints already written are intact, so rerun with --resume_from_checkpoint latest afterwards"
    if error.errno in _FULL:
        return f"Could not write to {where}: the disk (or your quota) is full; free some space{resume}."
    if error.errno in _READ_ONLY:
        return f"Could not write to {where}: it is on a read-only file system; pass a writable --output_dir{resume}."
    if error.errno in _FORBIDDEN:
        return (
            f"Could not write to {where}: permission denied; make it writable for this user or pass another "
            f"--output_dir{resume}."
        )
    return f"Could not read or write {error.filename or where} ({error.strerror or error}){resume}."


_OS_ERROR_CODE = re.compile(r"\(os error (\d+)\)")
# torch.save reports a failed write without the OS's reason.
_TORCH_WRITE_FAILED = ("PytorchStreamWriter failed writing", "file write failed")


def as_write_error(error: BaseException) -> OSError | None:
    """The OSError behind a failed save, also when a library wrapped it (safetensors' SafetensorError carries
    "(os error 28)" in its message, torch.save a RuntimeError); None when `error` is not a failed write."""
    if isinstance(error, OSError):
        return error
    text = str(error)
    code = _OS_ERROR_CODE.search(text)
    if code:
        return OSError(int(code.group(1)), os.strerror(int(code.group(1))))
    if isinstance(error, RuntimeError) and any(marker in text for marker in _TORCH_WRITE_FAILED):
        return OSError(errno.ENOSPC, "the file could not be written (disk full or not writable)")
    return None


def check_output_dir(output_dir: str | os.PathLike[str]) -> None:
    """Create `output_dir` and write a probe file there, so an unwritable folder fails now, not at the first save.

    Folders it had to create are removed again (single process only: DDP ranks share the folder), so a run that
    then stops on a setup problem leaves nothing behind.
    """
    folder = Path(output_dir)
    created = [parent for parent in (folder, *folder.parents) if not parent.exists()]
    probe = folder / f".colorlab-write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as handle:
            handle.write(b"colorlab")
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as error:
        raise OutputNotWritable(describe_write_error(error, folder)) from error
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under DDP every rank runs this check at once: removing a folder another rank has just created and is
        # about to probe made the 2-rank test fail now and then ("File exists" / a vanished folder).
        return
    for made in created:  # deepest first
        try:
            made.rmdir()
        except OSError:  # another rank or process is already writing there
            break


# --- grayscale photos in a colour dataset -------------------------------------------------------------------------


def _sample_records(data: Any, column: str, count: int) -> list[Any]:
    """Up to `count` image records spread evenly over a map-style dataset (the first ones of a stream)."""
    if hasattr(data, "__len__") and hasattr(data, "select"):
        total = len(data)
        step = max(1, total // count)
        return [data[index][column] for index in range(0, total, step)[:count]]
    return [row[column] for row in itertools.islice(iter(data), count)]


def check_colour_photos(train_dataset: Any, args: TrainingConfig) -> None:
    """Refuse a training set whose photos are mostly black-and-white, unless --allow_grayscale."""
    if args.allow_grayscale:
        return
    gray = readable = 0
    for record in _sample_records(train_dataset.data, train_dataset.image_column, GRAYSCALE_SAMPLE):
        try:
            image = _open_record(record, draft_size=(128, 128))
        except (ValueError, OSError):
            continue  # unreadable files are counted and skipped by the training loop itself
        readable += 1
        gray += is_grayscale(image)
    if readable and gray / readable > GRAYSCALE_REFUSE_SHARE:
        raise DataError(
            f"{gray} of {readable} sampled photos in {args.dataset} are black-and-white, so a colorizer would learn "
            "gray targets (and its metrics would look deceptively good); train on colour photos, or pass "
            "--allow_grayscale if this is intended."
        )
