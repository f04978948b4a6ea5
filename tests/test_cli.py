"""python -m models.colorize end to end: files and folders, skip-existing, --overwrite, bad files, clear errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import lightness_of
from PIL import Image

from models import colorize
from models.colorize import DEFAULT_MODEL, main
from space.outputs import safe_stem

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def inputs(tmp_path: Path, photo) -> Path:
    """inputs/portrait.jpg, inputs/album/{cat.png, cup.png, broken.png (text), notes.txt}."""
    folder = tmp_path / "inputs"
    album = folder / "album"
    album.mkdir(parents=True)
    photo("astronaut", 96).save(folder / "portrait.jpg", quality=95)
    photo("chelsea", 80).convert("L").save(album / "cat.png")
    photo("coffee", 72).save(album / "cup.png")
    (album / "broken.png").write_text("not an image")
    (album / "notes.txt").write_text("ignored: not an image extension")
    return folder


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "models.colorize", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_end_to_end_files_folders_bad_file_and_rerun(tmp_path, inputs, tiny_model_dir):
    out = tmp_path / "out"
    args = ["--model", str(tiny_model_dir), str(inputs / "portrait.jpg"), str(inputs / "album")]
    args += ["--out", str(out), "--working_size", "32"]
    first = _run_cli(*args, cwd=tmp_path)
    assert first.returncode == 1, first.stderr  # one input failed
    assert "broken.png is not an image PIL can read" in first.stderr
    assert "Traceback" not in first.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == ["cat_tiny-colorizer.png", "cup_tiny-colorizer.png", "portrait_tiny-colorizer.png"]
    for source, result in [("portrait.jpg", "portrait"), ("album/cat.png", "cat"), ("album/cup.png", "cup")]:
        original = Image.open(inputs / source)
        colorized = Image.open(out / f"{result}_tiny-colorizer.png")
        assert colorized.size == original.size and colorized.mode == "RGB"
        np.testing.assert_allclose(lightness_of(colorized), lightness_of(original), atol=0.5)

    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()}
    second = _run_cli(*args, cwd=tmp_path)
    assert second.returncode == 1  # the broken file still fails ...
    assert second.stderr.count("exists (pass --overwrite to replace it)") == 3  # ... the rest is not redone
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()} == before


def test_overwrite_replaces_and_exit_status_is_zero_when_all_succeed(tmp_path, inputs, tiny_model_dir, capsys):
    out = tmp_path / "out"
    args = ["--model", str(tiny_model_dir), str(inputs / "portrait.jpg"), "--out", str(out), "--working_size", "32"]
    assert main([*args, "--quiet"]) == 0
    target = out / "portrait_tiny-colorizer.png"
    target.write_bytes(b"stale")
    assert main([*args, "--quiet"]) == 0
    assert target.read_bytes() == b"stale"  # never overwritten without --overwrite
    assert main([*args, "--quiet", "--overwrite"]) == 0
    assert Image.open(target).size == Image.open(inputs / "portrait.jpg").size
    assert re.search(r"1 written \([0-9.]+ img/s\), 0 skipped", capsys.readouterr().err)  # with its throughput


def test_jpg_format_and_transparent_input(tmp_path, photo, tiny_model_dir):
    source = tmp_path / "logo.png"
    image = photo("coffee", 64).convert("RGBA")
    image.putalpha(0)  # fully transparent: flattened onto white for JPEG
    image.save(source)
    out = tmp_path / "out"
    code = main(["--model", str(tiny_model_dir), str(source), "--out", str(out), "--format", "jpg", "--quiet"])
    assert code == 0
    result = Image.open(out / "logo_tiny-colorizer.jpg")
    assert result.format == "JPEG" and result.mode == "RGB" and result.size == image.size
    assert np.asarray(result).min() > 240


def test_bad_files_are_reported_and_the_others_written(tmp_path, inputs, tiny_model_dir, capsys):
    (tmp_path / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out"
    sources = [str(tmp_path / "empty.jpg"), str(tmp_path / "missing.png"), str(inputs / "portrait.jpg")]
    assert main(["--model", str(tiny_model_dir), *sources, "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "empty.jpg is empty (0 bytes)" in err
    assert "missing.png does not exist" in err
    assert re.search(r"1 written \([0-9.]+ img/s\), 0 skipped \(already there\), 2 failed", err)
    assert [p.name for p in out.iterdir()] == ["portrait_tiny-colorizer.png"]


def test_inputs_sharing_a_name_do_not_overwrite_each_other(tmp_path, photo, tiny_model_dir, capsys):
    photo("chelsea", 48).save(tmp_path / "cat.png")
    photo("coffee", 48).save(tmp_path / "cat.jpg")
    out = tmp_path / "out"
    assert main(["--model", str(tiny_model_dir), str(tmp_path), "--out", str(out), "--quiet"]) == 1
    assert "already used by" in capsys.readouterr().err
    assert Image.open(out / "cat_tiny-colorizer.png").size == (48, 32)  # the first one (cat.jpg), kept intact


def test_missing_default_model_says_what_to_do(tmp_path, inputs, monkeypatch, capsys):
    assert DEFAULT_MODEL == "weights/colour_global"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(colorize, "REPO_ROOT", tmp_path / "no-repo")
    assert main([str(inputs / "portrait.jpg"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "The default model weights/colour_global is missing" in err and "pass --model" in err
    assert not (tmp_path / "out").exists()


def test_bad_model_and_bad_arguments_exit_2_with_one_sentence(tmp_path, inputs, capsys):
    (tmp_path / "not-a-model").mkdir()
    portrait = str(inputs / "portrait.jpg")
    assert main(["--model", str(tmp_path / "not-a-model"), portrait, "--out", str(tmp_path / "o")]) == 2
    assert "has no config.json, so it is not a saved ColorLab model" in capsys.readouterr().err
    assert main(["--model", "x", portrait, "--out", str(tmp_path / "o"), "--working_size", "8"]) == 2
    assert "--working_size must be at least 16" in capsys.readouterr().err
    (tmp_path / "empty-folder").mkdir()
    assert main(["--model", "x", str(tmp_path / "empty-folder"), "--out", str(tmp_path / "o")]) == 2
    assert "no image files found" in capsys.readouterr().err
    (tmp_path / "file-out").write_text("")
    assert main(["--model", "x", portrait, "--out", str(tmp_path / "file-out")]) == 2
    assert "is a file; pass a folder" in capsys.readouterr().err


def test_output_names_are_safe_file_names():
    assert colorize.safe_model_name("pix2pix") == "pix2pix"
    assert colorize.safe_model_name("my model (v2)") == "my-model-v2"
    assert colorize.safe_model_name("..") == "colorized"
    # the same helper names the app's downloads and the Space bundle's weight folders (space.outputs.safe_stem)
    assert safe_stem("../../etc/passwd") == "etc_passwd" and safe_stem("...") == "image"
    assert len(safe_stem("x" * 80)) == 60
    assert colorize.output_path(Path("/a/b/photo.final.JPG"), Path("out"), "m", "jpg") == Path("out/photo.final_m.jpg")
