"""What a training run tells people: the start-of-run summary, losses every --logging_steps, validation grids as
images in TensorBoard (read back with tensorboard's own EventAccumulator), and the launcher's mixed precision.

    .venv/bin/python -m pytest tests/test_train_tracking.py -q -x
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from train_support import make_photo_folder, run_cli, run_trainer

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator", reason="tensorboard is the default tracker"
)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return make_photo_folder(tmp_path_factory.mktemp("photos"))


def tiny(dataset: Path, output_dir: Path, *extra: str) -> list[str]:
    return ["--config", "tiny", "--dataset", str(dataset), "--output_dir", str(output_dir), *extra]


def _events(output_dir: Path) -> event_accumulator.EventAccumulator:
    # accelerate's TensorBoard run "colorlab" (the hyper-parameters go to a timestamped folder inside it)
    run = output_dir / "logs" / "colorlab"
    events = event_accumulator.EventAccumulator(str(run), size_guidance={event_accumulator.IMAGES: 0})
    events.Reload()
    return events


def test_tensorboard_gets_validation_grids_as_images_and_losses_every_logging_steps(tmp_path, photos, capsys):
    out = tmp_path / "out"
    extra = ["--report_to", "tensorboard", "--logging_steps", "2", "--max_train_steps", "5", "--validation_steps", "2"]
    run_trainer(tiny(photos, out, *extra, "--checkpointing_steps", "0"))
    events = _events(out)

    assert "validation/samples" in events.Tags()["images"]
    grids = events.Images("validation/samples")
    assert [grid.step for grid in grids] == [2, 4, 5]  # every validation, the final one included
    last = Image.open(io.BytesIO(grids[-1].encoded_image_string))
    saved = Image.open(out / "validation" / "samples-0000005.png")
    assert last.size == saved.size and np.array_equal(np.asarray(last.convert("RGB")), np.asarray(saved))
    # Training scalars every 2 steps and at the last; validation metrics at every validation.
    assert [s.step for s in events.Scalars("g_loss")] == [2, 4, 5]
    assert [s.step for s in events.Scalars("val_ciede2000")] == [2, 4, 5]

    summary = capsys.readouterr().out
    # 8 photos, val_fraction 0.25 -> 6 training photos, batch 2 -> 3 steps an epoch; 5 steps -> 2 epochs
    for line in (
        "***** Running training *****",
        "Num examples = 6",
        "Num epochs = 2",
        "Instantaneous batch size per device = 2",
        "Total train batch size (w. parallel, distributed & accumulation) = 2",
        "Gradient accumulation steps = 1",
        "Total optimization steps = 5",
        "Mixed precision = no",
    ):
        assert line in summary


def test_the_launchers_mixed_precision_is_used_unless_the_flag_says_otherwise(tmp_path, photos, capsys, monkeypatch):
    # `accelerate launch --mixed_precision bf16` (or `accelerate config`) hands the choice over in this variable.
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    base = tiny(
        photos, tmp_path / "bf16", "--val_fraction", "0", "--max_train_steps", "1", "--checkpointing_steps", "0"
    )
    run_trainer(base)
    assert "Mixed precision = bf16" in capsys.readouterr().out
    run_trainer(
        tiny(photos, tmp_path / "no", "--val_fraction", "0", "--max_train_steps", "1", "--mixed_precision", "no")
    )
    assert "Mixed precision = no" in capsys.readouterr().out


def test_fp16_on_the_cpu_is_refused_in_one_sentence(tmp_path, photos, capsys, monkeypatch):
    # accelerate would train in float32 while calling it fp16 (no CPU autocast for it): say so instead.
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    out = tmp_path / "out"
    assert run_cli(tiny(photos, out, "--val_fraction", "0", "--max_train_steps", "1")) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "fp16 mixed precision needs a GPU" in errors[0] and "--mixed_precision no" in errors[0]
    assert not (out / "model.safetensors").exists()
