"""Opens whatever `--dataset` names with the `datasets` library's own builders, and finds its image column.

    train, val, column = load_splits("path/or/hub-id", val_fraction=0.1)  # what training and judge.evaluate read
    rows, column = open_split(resolve_source("shots.parquet"), "train")   # undecoded image column named `column`
    split_names("data/corpus")                                            # ['train', 'validation']

The data layer under the trainer and the evaluation (corpus/ sits below judge/ and trainer/): both open datasets
here, so a dataset that trains is a dataset that evaluates.

What `--dataset` may name, checked in this order:
- a folder written by `save_to_disk` (it holds dataset_info.json or dataset_dict.json): `datasets.load_from_disk`;
- a data file (.parquet, .csv, .tsv, .json, .jsonl, .arrow): the builder of that format, one "train" split;
- a folder with image files: `imagefolder`; split subfolders (train/, validation/) are splits, a flat folder is all
  training data whatever its file names say (datasets would take "beach_train-2.jpg" for the train split);
- a folder of data files of one format (shards): that builder; splits as datasets infers them from folder and file
  names (train/, validation/, train-00000-of-00002.parquet ...), the Hub's own layout;
- anything else: a Hub dataset id.

The image column is the one whose feature is `datasets.Image`; without one, a column of encoded images ({bytes,
path} or raw bytes) or of image file names. In csv/json files image paths are read relative to the file that lists
them, as imagefolder reads its metadata files. Every problem is a `DataError` of one sentence that says the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.hub_files import looks_like_repo_id
from models.model_card import CORPUS_FOLDER, LOCAL_ROOTS

# The formats read from local data files: extension -> (datasets builder, its options).
DATA_FILE_FORMATS: dict[str, tuple[str, dict[str, str]]] = {
    ".parquet": ("parquet", {}),
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"sep": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".arrow": ("arrow", {}),
}
_SAVED_MARKERS = ("dataset_info.json", "dataset_dict.json")  # what save_to_disk writes
_TEXT = ("string", "large_string")
_NAMED_IMAGE_COLUMNS = ("image", "img", "pixel_values")  # tie-breakers when several columns could hold images
_ACCEPTED = (
    "an image folder, a data file (.parquet, .csv, .tsv, .json, .jsonl, .arrow), a folder of such files, a "
    "save_to_disk folder or a Hub dataset id"
)


class DataError(ValueError):
    """A dataset argument or dataset content problem, worded for the user."""


@dataclass(frozen=True)
class Source:
    """What `--dataset` names: its kind, and for data files the builder and each split's files."""

    name: str
    kind: str  # "saved" | "files" | "imagefolder" | "hub"
    path: Path | None = None
    builder: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)  # split -> data files (kind "files")


def image_extensions() -> set[str]:
    """The image file extensions imagefolder reads (lower case, with the dot)."""
    from datasets.packaged_modules.imagefolder.imagefolder import ImageFolder

    return {ext.lower() for ext in ImageFolder.EXTENSIONS}


def corpus_hint(dataset: str) -> str:
    """The command that builds the open photo corpus, when `dataset` is (inside) its default folder."""
    posix = Path(dataset).expanduser().as_posix().rstrip("/")
    if posix == CORPUS_FOLDER or posix.startswith(CORPUS_FOLDER + "/"):
        return f"; build it with `python -m corpus.photos build --out {CORPUS_FOLDER}`"
    return ""


def _looks_local(dataset: str) -> bool:
    """Whether a name that does not exist was meant as a local path rather than a Hub id."""
    path = Path(dataset)
    suffix = path.suffix.lower()
    return (
        (len(path.parts) > 1 and not looks_like_repo_id(dataset))
        or dataset.startswith((".", "/", "~"))
        or suffix in DATA_FILE_FORMATS
        or path.parts[0] in LOCAL_ROOTS
    )


def has_split_folders(path: Path) -> bool:
    """Whether `path` has subfolders named like splits (train/, validation/, test-2/ ...), as datasets reads them."""
    import re

    from datasets.data_files import SPLIT_KEYWORDS

    keywords = "|".join(re.escape(k) for names in SPLIT_KEYWORDS.values() for k in names)
    pattern = re.compile(rf"^({keywords})([-._ 0-9].*)?$", re.IGNORECASE)
    return any(child.is_dir() and pattern.match(child.name) for child in path.iterdir())


def _visible_files(folder: Path) -> Any:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # .git, .cache, .ipynb_checkpoints ...
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def _shard_files(folder: Path, extensions: list[str]) -> dict[str, list[str]]:
    """Each split's data files of a shard folder, split as datasets infers it from folder and file names."""
    from datasets.data_files import DataFilesDict, get_data_patterns

    base = folder.resolve().as_posix()
    found = DataFilesDict.from_patterns(get_data_patterns(base), base_path=base).filter(extensions=extensions)
    return {str(split): sorted(files) for split, files in found.items() if files}


def _folder_source(dataset: str, path: Path) -> Source:
    images = image_extensions()
    formats: dict[tuple[str, tuple], set[str]] = {}  # (builder, options) -> extensions seen
    for file in _visible_files(path):
        suffix = file.suffix.lower()
        if suffix in images:  # photos make it an image folder (a stray notes.csv beside them is ignored)
            return Source(dataset, "imagefolder", path)
        if suffix in DATA_FILE_FORMATS:
            builder, options = DATA_FILE_FORMATS[suffix]
            formats.setdefault((builder, tuple(options.items())), set()).add(suffix)
    if not formats:
        raise DataError(
            f"Could not load dataset '{dataset}': the folder holds no images and no data files; pass "
            f"{_ACCEPTED}{corpus_hint(dataset)}."
        )
    if len(formats) > 1:
        seen = sorted(set().union(*formats.values()))
        raise DataError(
            f"Could not load dataset '{dataset}': the folder mixes data files of several formats ({', '.join(seen)}); "
            "keep one format per folder or pass one file as --dataset."
        )
    (builder, options), extensions = formats.popitem()
    return Source(dataset, "files", path, builder, dict(options), _shard_files(path, sorted(extensions)))


def resolve_source(dataset: str) -> Source:
    """Classify `--dataset` (see the module docstring); a local path that does not exist fails here."""
    path = Path(dataset).expanduser()
    if path.is_dir():
        if any((path / marker).is_file() for marker in _SAVED_MARKERS):
            return Source(dataset, "saved", path)
        return _folder_source(dataset, path)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in DATA_FILE_FORMATS:
            builder, options = DATA_FILE_FORMATS[suffix]
            return Source(dataset, "files", path, builder, options, {"train": [str(path.resolve())]})
        what = "a single image" if suffix in image_extensions() else f"a '{suffix or path.name}' file"
        raise DataError(f"Could not load dataset '{dataset}': it is {what}, not a dataset; pass {_ACCEPTED}.")
    if _looks_local(dataset) or corpus_hint(dataset):
        hint = corpus_hint(dataset) or f"; pass {_ACCEPTED}"
        raise DataError(f"Could not load dataset '{dataset}': no such file or folder{hint}.")
    return Source(dataset, "hub")


# --- loading ------------------------------------------------------------------------------------------------------
def _no_split(source: Source, split: str, splits: list[str]) -> DataError:
    fix = (
        "; a single data file is one 'train' split: hold out part of it with --val_fraction"
        if (source.kind == "files" and source.path is not None and source.path.is_file())
        else ""
    )
    return DataError(f"Dataset '{source.name}' has no split '{split}'; its splits are {splits}{fix}.")


def _load_rows(source: Source, split: str, *, config: str | None, streaming: bool) -> Any:
    import datasets

    if source.kind == "saved":
        loaded = datasets.load_from_disk(str(source.path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise _no_split(source, split, list(loaded))
            loaded = loaded[split]
        return loaded.to_iterable_dataset() if streaming else loaded
    try:
        if source.kind == "files":
            if split not in source.files:
                raise _no_split(source, split, list(source.files))
            return datasets.load_dataset(
                source.builder,
                data_files={split: source.files[split]},
                split=split,
                streaming=streaming,
                **source.options,
            )
        if source.kind == "imagefolder":
            # Without split subfolders every image is training data (see the module docstring).
            files = None if has_split_folders(source.path) else {"train": "**"}
            return datasets.load_dataset(
                "imagefolder", data_dir=str(source.path), data_files=files, split=split, streaming=streaming
            )
        return datasets.load_dataset(source.name, config, split=split, streaming=streaming)
    except DataError:
        raise
    except (FileNotFoundError, ConnectionError, OSError) as error:
        where = "Hub dataset id reachable from this machine (HF_HUB_OFFLINE=1 forbids downloads)"
        raise DataError(
            f"Could not load dataset '{source.name}' ({type(error).__name__}: {error}); check the name, or pass "
            f"an image folder, a data file, a save_to_disk folder or a {where}."
        ) from None
    except datasets.exceptions.DatasetGenerationError as error:  # a data file that its builder cannot parse
        cause = " ".join(str(error.__cause__ or error).split())
        raise DataError(f"Could not read dataset '{source.name}' ({cause}); fix or remove the broken file.") from None
    except ValueError as error:  # also pyarrow's ArrowInvalid: a file that is not what its extension says
        if source.kind == "files":
            raise DataError(
                f"Could not read dataset '{source.name}' ({' '.join(str(error).split())}); check that its files are "
                f"{source.builder} files with at least one row."
            ) from None
        raise DataError(f"Could not load split '{split}' of dataset '{source.name}': {error}") from None


def split_names(dataset: str, config: str | None = None) -> list[str]:
    """The splits `dataset` offers ([] for a single saved Dataset); a Hub id that cannot be reached fails."""
    import datasets

    source = resolve_source(dataset)
    if source.kind == "saved":
        info = source.path / "dataset_dict.json"
        if not info.is_file():
            return []
        import json

        return list(json.loads(info.read_text(encoding="utf-8")).get("splits", []))
    if source.kind == "files":
        return list(source.files)
    if source.kind == "imagefolder":
        if not has_split_folders(source.path):
            return ["train"]
        return datasets.get_dataset_split_names("imagefolder", data_dir=str(source.path))
    try:
        return list(datasets.get_dataset_split_names(dataset, config))
    except (ConnectionError, FileNotFoundError, OSError, ValueError) as error:
        raise DataError(
            f"Could not list the splits of dataset '{dataset}' ({type(error).__name__}); pass a local image "
            "folder, data file or saved dataset, or connect to the Hub and retry."
        ) from None


# --- the image column ---------------------------------------------------------------------------------------------
def column_names(rows: Any) -> list[str]:
    """A dataset's columns, also for a stream whose features datasets has not inferred yet."""
    if rows.features is not None:
        return list(rows.features)
    first = next(iter(rows), None)  # a stream of csv/json rows learns its columns from its first row
    return list(first or [])


def _first_values(rows: Any, names: list[str]) -> dict[str, Any]:
    """The first row's values of `names` (selected first, so no image of another column is decoded)."""
    if not names:
        return {}
    import datasets

    subset = rows.select_columns(names)
    if isinstance(subset, datasets.Dataset):
        return subset[0] if len(subset) else {}
    return next(iter(subset), None) or {}


def _kind(feature: Any, value: Any, *, requested: bool) -> str | None:
    """How a column holds images: "image" (datasets.Image), "encoded" ({bytes, path} or bytes), "paths" (file
    names), or None (not images)."""
    import datasets

    if isinstance(feature, datasets.Image):
        return "image"
    if isinstance(feature, dict) and ("bytes" in feature or "path" in feature):
        return "encoded"
    dtype = getattr(feature, "dtype", None)
    if dtype in ("binary", "large_binary") or isinstance(value, bytes):
        return "encoded"
    if dtype in _TEXT or (feature is None and isinstance(value, str)):
        if requested:
            return "paths"
        if isinstance(value, str) and Path(value.split("?")[0]).suffix.lower() in image_extensions():
            return "paths"
    return None


def _describe(feature: Any, value: Any) -> str:
    dtype = getattr(feature, "dtype", None) or type(feature).__name__
    return f"{dtype} values" if value is None else f"{dtype} values such as {str(value)[:40]!r}"


def find_image_column(rows: Any, requested: str | None) -> tuple[str, str]:
    """(column, how it holds images): `requested`, else the one datasets.Image column, else the one column of
    encoded images or image file names (a name such as 'image' breaks a tie)."""
    columns = column_names(rows)
    features = rows.features or {}
    # Only text (or not yet known) columns are looked into: a file name says whether they hold images.
    text = [c for c in columns if getattr(features.get(c), "dtype", None) in _TEXT or c not in features]
    values = _first_values(rows, text)
    kinds = {c: _kind(features.get(c), values.get(c), requested=c == requested) for c in columns}
    if requested:
        if requested not in columns:
            raise DataError(f"--image_column '{requested}' is not in the dataset; its columns are {columns}.")
        if kinds[requested] is None:
            others = [c for c in columns if _kind(features.get(c), values.get(c), requested=False)]
            choose = f"choose one of {others} with --image_column" if others else "pass the column that holds images"
            raise DataError(
                f"--image_column '{requested}' holds {_describe(features.get(requested), values.get(requested))}, "
                f"not images; {choose}."
            )
        return requested, kinds[requested]
    images = [c for c in columns if kinds[c] == "image"]
    if len(images) > 1:
        raise DataError(f"The dataset has {len(images)} image columns {images}; choose one with --image_column.")
    candidates = images or [c for c in columns if kinds[c]]
    if len(candidates) > 1:
        named = [c for c in candidates if c in _NAMED_IMAGE_COLUMNS]
        if len(named) != 1:
            raise DataError(f"Several columns could hold the images {candidates}; choose one with --image_column.")
        candidates = named
    if not candidates:
        raise DataError(
            f"The dataset has no image column (its columns are {columns}); name the column of images or image "
            "paths with --image_column."
        )
    return candidates[0], kinds[candidates[0]]


# --- image paths in csv/json files --------------------------------------------------------------------------------
def _absolute(paths: list[Any], base: str) -> list[Any]:
    return [
        p
        if not isinstance(p, str) or not p or "://" in p or os.path.isabs(os.path.expanduser(p))
        else os.path.normpath(os.path.join(base, os.path.expanduser(p)))
        for p in paths
    ]


def _paths_from(rows: Any, column: str, base: str) -> Any:
    def resolve(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return {column: _absolute(batch[column], base)}

    return rows.map(resolve, batched=True)


def _resolve_paths(source: Source, split: str, rows: Any, column: str, *, streaming: bool) -> Any:
    """Relative image paths read from the folder of the data file that lists them (one load per file when the
    split's files sit in several folders)."""
    import datasets

    files = source.files.get(split, []) if source.kind == "files" else []
    if not files:  # a Hub or saved dataset: paths stay as written (relative ones from the working folder)
        return rows
    folders = {str(Path(f).parent) for f in files}
    if len(folders) == 1:
        rows = _paths_from(rows, column, folders.pop())
    else:
        rows = datasets.concatenate_datasets(
            [
                _paths_from(
                    datasets.load_dataset(
                        source.builder, data_files=[f], split="train", streaming=streaming, **source.options
                    ),
                    column,
                    str(Path(f).parent),
                )
                for f in files
            ]
        )
    first = _first_values(rows, [column]).get(column)
    if isinstance(first, str) and "://" not in first and not Path(first).is_file():
        raise DataError(
            f"Column '{column}' of dataset '{source.name}' names '{first}', which is not a file (relative paths are "
            "read from the folder of the file that lists them); fix the paths or choose another --image_column."
        )
    return rows


def open_split(
    source: Source, split: str, *, config: str | None = None, streaming: bool = False, image_column: str | None = None
) -> tuple[Any, str]:
    """(rows, image column) of one split, the column cast to `datasets.Image(decode=False)`: images stay bytes or
    paths, so decoding (and its failures) happens in our code, not inside datasets."""
    import datasets

    rows = _load_rows(source, split, config=config, streaming=streaming)
    column, kind = find_image_column(rows, image_column)
    if kind == "paths":
        rows = _resolve_paths(source, split, rows, column, streaming=streaming)
    if rows.features is None:  # a csv/json stream, whose features datasets learns only by reading: cannot be cast
        return rows.map(_as_record, fn_kwargs={"column": column}), column
    return rows.cast_column(column, datasets.Image(decode=False)), column


def _as_record(row: dict[str, Any], column: str) -> dict[str, Any]:
    """A path as the record `datasets.Image(decode=False)` makes of it."""
    return {column: {"bytes": None, "path": row[column]}}


# --- train and validation splits ----------------------------------------------------------------------------------
def load_splits(
    dataset: str,
    *,
    dataset_config: str | None = None,
    split: str = "train",
    val_split: str | None = None,
    val_fraction: float = 0.0,
    image_column: str | None = None,
    caption_column: str | None = None,
    streaming: bool = False,
    max_train_samples: int | None = None,
    seed: int = 0,
) -> tuple[Any, Any | None, str]:
    """(train, validation or None, image column) from any source `resolve_source` accepts (image folder, data file
    or shards, save_to_disk folder, Hub id). Validation comes from `val_split` or a seeded hold-out."""
    source = resolve_source(dataset)
    train, column = open_split(source, split, config=dataset_config, streaming=streaming, image_column=image_column)
    if caption_column and caption_column not in column_names(train):
        raise DataError(f"--caption_column '{caption_column}' is not in the dataset; columns: {column_names(train)}.")
    validation = None
    if val_split:
        validation, _ = open_split(source, val_split, config=dataset_config, image_column=column)
    elif val_fraction > 0:
        if streaming:
            raise DataError("--val_fraction needs a map-style dataset; with --streaming pass --val_split instead.")
        if not 0 < val_fraction < 1:
            raise DataError(f"--val_fraction must be between 0 and 1, got {val_fraction}.")
        parts = train.train_test_split(test_size=val_fraction, seed=seed, shuffle=True)
        train, validation = parts["train"], parts["test"]
    if max_train_samples is not None:
        train = train.take(max_train_samples) if streaming else train.select(range(min(max_train_samples, len(train))))
    return train, validation, column
