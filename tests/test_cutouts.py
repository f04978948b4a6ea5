"""Photographic cut-outs: the builder's manifest rules and refusals (python -m corpus.cutouts), and the compositing
augmentation (--composite_cutouts): deterministic, training crops only, pixels changed only under the pasted alpha,
batch shapes kept, clearly labelled in the run summary and the model card, one sentence for a bad folder.

    .venv/bin/python -m pytest tests/test_cutouts.py -q -x

Everything is synthetic and built in tmp dirs: no real package is read.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from test_corpus import photo, write_deb
from train_support import make_photo_folder, run_cli, run_trainer

from corpus import cutouts
from corpus.cutout_set import MARKER, CutoutSetError, describe, is_cutout_set, read_cutout_set
from corpus.photos import load_manifest as load_corpus_manifest
from corpus.sources import CUTOUT_DEB_SOURCES, DEB_SOURCES, PackageCache
from trainer.args import parse_args
from trainer.compositing import Compositor
from trainer.data import ColorizationDataset, CropConfig, collate

# ------------------------------------------------------------------------------------------------- helpers


def cutout_image(seed: int, size: tuple[int, int] = (90, 120)) -> Image.Image:
    """A photo-like RGBA cut-out: a textured picture inside an opaque ellipse, transparent around it."""
    rgba = photo(seed, size).convert("RGBA")
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse((5, 5, size[0] - 6, size[1] - 6), fill=255)
    rgba.putalpha(mask)
    return rgba


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def entry(where: str, data: bytes, **overrides) -> dict:
    line = {"source": "scratch", "path": where, "sha256": hashlib.sha256(data).hexdigest(),
            "licence": "CC-BY-SA-3.0", "credit": "MIT Scratch team", "category": "people"}  # fmt: skip
    return {**line, **overrides}


def write_lines(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cutout_set(tmp_path_factory) -> Path:
    """A cut-out set built by the real builder from a fake scratch package (three synthetic cut-outs)."""
    root = tmp_path_factory.mktemp("cutouts")
    files = {f"usr/share/scratch/Media/Costumes/People/p{i}.png": png(cutout_image(i)) for i in range(3)}
    write_deb(root / "scratch_1.4.0.6~dfsg1-6.1_all.deb", files)
    manifest = write_lines(root / "manifest.jsonl", [entry(p, d) for p, d in files.items()])
    out = root / "set"
    problems = cutouts.build(out, manifest=manifest, cache=PackageCache(root, offline=True), log=lambda _: None)
    assert problems == []
    return out


# ------------------------------------------------------------------------------------------------ builder


def test_committed_manifest_is_a_reviewed_allow_list_that_never_reaches_the_corpus() -> None:
    entries = cutouts.load_manifest()
    assert len(entries) >= 400
    assert {e.source for e in entries} <= set(CUTOUT_DEB_SOURCES) | {"scratch"}
    assert {e.source for e in entries} <= set(DEB_SOURCES + CUTOUT_DEB_SOURCES)
    assert sum(e.category == "people" for e in entries) >= 50  # what the corpus lacks most
    assert {e.licence for e in entries} == {"CC-BY-SA-3.0", "GPL-2.0-or-later"}
    assert not any(e.path.endswith(".svg") or "/cartoon/" in e.path for e in entries)
    corpus = {e.sha256 for e in load_corpus_manifest()}
    assert not corpus & {e.sha256 for e in entries}


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"licence": ""}, "needs source, path, a 64-hex sha256, licence, credit and category"),
        ({"credit": ""}, "needs source, path, a 64-hex sha256, licence, credit and category"),
        ({"category": ""}, "needs source, path, a 64-hex sha256, licence, credit and category"),
        ({"category": "Two words"}, "use one lowercase word"),
        ({"licence": "CC-BY-NC-SA-3.0"}, "non-commercial licence (CC-BY-NC-SA-3.0)"),
        ({"path": "usr/share/tuxpaint/stamps/animals/cat.svg"}, "is an SVG drawing, not a photograph"),
    ],
)
def test_manifest_refuses_entries_without_credit_category_or_with_a_non_commercial_licence(
    tmp_path: Path, overrides: dict, problem: str
) -> None:
    manifest = write_lines(tmp_path / "m.jsonl", [entry("a/b.png", b"x", **overrides)])
    with pytest.raises(cutouts.CutoutError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        cutouts.load_manifest(manifest)


def test_build_keeps_photographic_cut_outs_and_refuses_the_rest_in_one_line_each(tmp_path: Path) -> None:
    drawing = Image.new("RGBA", (80, 80), (0, 0, 0, 0))
    ImageDraw.Draw(drawing).ellipse((10, 10, 70, 70), fill=(250, 200, 0, 255), outline=(0, 0, 0, 255), width=3)
    files = {
        "usr/share/scratch/Media/Costumes/People/dancer.gif": png(cutout_image(1, (300, 500))),  # stored as PNG
        "usr/share/scratch/Media/Costumes/Things/photo.png": png(photo(2)),  # no transparency
        "usr/share/scratch/Media/Costumes/Things/sun.png": png(drawing),
        "usr/share/scratch/Media/Costumes/Things/changed.png": png(cutout_image(3)),
    }
    write_deb(tmp_path / "scratch_1.4.0.6~dfsg1-6.1_all.deb", files)
    lines = [entry(p, d, category="people" if "People" in p else "object") for p, d in files.items()]
    lines[3]["sha256"] = "0" * 64
    manifest = write_lines(tmp_path / "m.jsonl", lines)
    out = tmp_path / "set"

    problems = cutouts.build(out, manifest=manifest, cache=PackageCache(tmp_path, offline=True), log=lambda _: None)

    assert len(problems) == 3
    assert problems[0].endswith("photo.png: it has no transparent pixels, so it is not a cut-out")
    assert "sun.png: it has only" in problems[1] and "a drawing or posterised image, not a photograph" in problems[1]
    assert problems[2].startswith("changed file scratch:") and "review the new picture" in problems[2]
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert (row["licence"], row["credit"], row["category"], row["mirror"]) == (
        "CC-BY-SA-3.0", "MIT Scratch team", "people", True
    )  # fmt: skip
    stored = Image.open(out / row["file_name"])
    assert stored.mode == "RGBA" and max(stored.size) == cutouts.MAX_SIDE  # shrunk from 500 px
    assert np.asarray(stored.getchannel("A")).min() == 0  # still a cut-out
    card = (out / "README.md").read_text()
    assert "Compositing augmentation only" in card and "never validation photos" in card
    assert "Sources: scratch (1)." in card and "Categories: people (1)." in card
    assert "Licences: CC-BY-SA-3.0 (1)." in card and "MIT Scratch team" in card
    assert json.loads((out / MARKER).read_text())["count"] == 1


def test_the_corpus_builder_still_refuses_cut_outs() -> None:
    from corpus.photos import CorpusError, encode
    from corpus.sources import Original

    with pytest.raises(CorpusError, match="cut-out rather than a photograph"):
        encode(Original(png(cutout_image(0))))


# ----------------------------------------------------------------------------------------- augmentation


def test_compositing_is_deterministic_and_changes_pixels_only_under_the_pasted_alpha(cutout_set: Path) -> None:
    compositor = Compositor.from_folder(cutout_set, probability=1.0)
    crop = torch.rand(3, 64, 48)
    first, covered = compositor(crop, np.random.default_rng([0, 1, 7, 2]))
    again, covered_again = compositor(crop, np.random.default_rng([0, 1, 7, 2]))
    other, _ = compositor(crop, np.random.default_rng([0, 1, 8, 2]))

    assert torch.equal(first, again) and torch.equal(covered, covered_again)
    assert not torch.equal(first, other)
    assert first.shape == crop.shape and torch.equal(crop, crop.clone())  # the input is not modified
    changed = (first != crop).any(0)
    assert changed.any()
    assert not (changed & (covered == 0)).any()  # outside the pasted alpha the photo is untouched
    assert torch.allclose(first[:, covered == 1], first[:, covered == 1].clamp(0, 1))
    never = Compositor.from_folder(cutout_set, probability=0.0)
    assert torch.equal(never(crop, np.random.default_rng(0))[0], crop)


def test_only_training_samples_are_composited_deterministically_with_the_same_crops_and_shapes(
    cutout_set: Path, tmp_path: Path
) -> None:
    photos = [{"image": photo(seed, (96, 80))} for seed in range(6)]
    crop = CropConfig(resolution=32)
    compositor = Compositor.from_folder(cutout_set, probability=1.0)

    def make(train: bool, with_cutouts: bool) -> ColorizationDataset:
        return ColorizationDataset(
            photos, crop=crop, train=train, seed=3, compositor=compositor if with_cutouts else None
        )

    plain, composited, again = make(True, False), make(True, True), make(True, True)
    for dataset in (plain, composited, again):
        dataset.set_epoch(2)
    batch_plain = collate([plain[i] for i in range(4)])
    batch = collate([composited[i] for i in range(4)])
    assert batch["L"].shape == batch_plain["L"].shape == (4, 1, 32, 32)
    assert batch["ab"].shape == batch_plain["ab"].shape == (4, 2, 32, 32)
    assert torch.equal(batch["index"], batch_plain["index"])  # same order
    assert torch.equal(batch["L"], collate([again[i] for i in range(4)])["L"])  # deterministic per (epoch, index)
    differs = (batch["L"] != batch_plain["L"]).flatten(1).any(1)
    assert differs.all()  # probability 1: every crop got a cut-out
    assert not (batch["L"] != batch_plain["L"]).flatten(1).all(1).any()  # the crop itself is the same photo crop
    validation, reference = make(False, True), make(False, False)  # never composited, even if handed a compositor
    for i in range(len(photos)):
        assert torch.equal(validation[i]["L"], reference[i]["L"])
        assert torch.equal(validation[i]["ab"], reference[i]["ab"])


# ------------------------------------------------------------------------------------- flag and labels


def test_a_missing_empty_or_wrong_folder_is_refused_in_one_sentence(tmp_path: Path, capsys) -> None:
    photos = make_photo_folder(tmp_path / "photos")
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder, says in (
        (tmp_path / "nowhere", "is not a folder; build it with 'python -m corpus.cutouts build --out DIR'"),
        (empty, "is not a cut-out set (it has no cutouts.json and metadata.jsonl)"),
        (photos, "is not a cut-out set"),
    ):
        argv = ["--config", "tiny", "--dataset", str(photos), "--composite_cutouts", str(folder)]
        with pytest.raises(SystemExit) as exit_info:
            parse_args(argv)
        assert exit_info.value.code == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
        assert len(errors) == 1 and says in errors[0], errors
    (empty / MARKER).write_text("{}")
    (empty / "metadata.jsonl").write_text("")
    with pytest.raises(CutoutSetError, match="lists no cut-outs"):
        read_cutout_set(empty)
    # the card's label is written when training ends: a folder moved since must not cost the run
    assert "photographic cut-outs from" in describe(tmp_path / "moved", 0.5)


def test_a_cut_out_set_is_never_used_as_training_or_validation_photos(cutout_set: Path, tmp_path: Path, capsys):
    assert is_cutout_set(cutout_set)
    assert run_cli(["--config", "tiny", "--dataset", str(cutout_set), "--output_dir", str(tmp_path / "o")]) != 0
    assert "is a cut-out set: cut-outs are never training or validation photos" in capsys.readouterr().err


def test_a_composited_run_says_so_in_its_summary_and_model_card(cutout_set: Path, tmp_path: Path, capsys) -> None:
    photos = make_photo_folder(tmp_path / "photos")
    out = tmp_path / "out"
    argv = ["--config", "tiny", "--dataset", str(photos), "--output_dir", str(out), "--max_train_steps", "2",
            "--checkpointing_steps", "0", "--composite_cutouts", str(cutout_set),
            "--composite_probability", "0.7"]  # fmt: skip
    run_trainer(argv)
    label = describe(cutout_set, 0.7)
    assert f"Augmentation = {label}" in capsys.readouterr().out
    assert "with probability 0.7" in label and "(3 cut-outs" in label and "validation photos never composited" in label
    card = (out / "README.md").read_text()
    training = card.split("## Training", 1)[1].split("\n## ", 1)[0]
    assert f"- augmentation: {label}" in training
