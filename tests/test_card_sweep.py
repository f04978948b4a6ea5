"""judge.card_sweep: an evaluate sweep written into a saved model's card, keeping its dtype and its other files."""

from __future__ import annotations

import json

import torch

from judge.card_sweep import main as card_sweep_main
from judge.card_sweep import sweep_for_card
from models.hub import load_model
from models.registry import create_model


def _report() -> dict:
    rows = {
        "128": {"ciede2000": 12.41, "ab_auc": 0.875, "colourfulness_delta": 30.2, "blotches": 0.0},
        "256": {"ciede2000": 12.63, "ab_auc": 0.873, "colourfulness_delta": 29.7, "blotches": 0.0},
    }
    gray = {size: {"ciede2000": 12.87, "ab_auc": 0.865, "colourfulness_delta": 46.2, "blotches": 0.0} for size in rows}
    return {
        "config": {
            "dataset": "data/corpus",
            "split": "validation",
            "image_size": 512,
            "sources": {"mine": "weights/x"},
        },
        "sweep": {"sizes": [128, 256], "models": {"grayscale": gray, "mine": rows}, "spread": {"mine": 0.22}},
    }


def test_the_sweep_block_names_its_command_gray_and_every_size():
    block = sweep_for_card(_report(), "mine")
    assert block["command"].startswith("python -m judge.evaluate --models weights/x --dataset data/corpus")
    assert "--sweep 128,256" in block["command"]
    assert block["gray_ciede2000"] == 12.87
    assert block["sizes"]["256"]["ciede2000"] == 12.63
    assert sweep_for_card(_report(), "mine", source="weights/y")["command"].startswith(
        "python -m judge.evaluate --models weights/y "
    )


def test_the_cli_writes_the_sweep_into_card_and_config_and_keeps_dtype_and_files(tmp_path):
    folder = tmp_path / "model"
    create_model("unet_tiny").save_pretrained(folder, dtype=torch.float16)
    (folder / "samples.png").write_bytes(b"not touched")
    size_before = (folder / "model.safetensors").stat().st_size
    (tmp_path / "report.json").write_text(json.dumps(_report()))

    argv = ["--report", str(tmp_path / "report.json"), "--model", str(folder), "--name", "mine"]
    assert card_sweep_main(argv) == 0

    card = (folder / "README.md").read_text()
    assert "## Working-size sweep" in card and "| 256 | 12.63 |" in card
    assert load_model(folder).card_data["sweep"]["sizes"]["128"]["ciede2000"] == 12.41
    assert (folder / "model.safetensors").stat().st_size == size_before  # still fp16
    assert (folder / "samples.png").read_bytes() == b"not touched"


def test_a_report_without_a_sweep_or_the_model_is_one_sentence(tmp_path, capsys):
    folder = tmp_path / "model"
    create_model("unet_tiny").save_pretrained(folder)
    no_sweep = tmp_path / "plain.json"
    no_sweep.write_text(json.dumps({"config": {}}))
    assert card_sweep_main(["--report", str(no_sweep), "--model", str(folder), "--name", "mine"]) == 2
    assert "run judge.evaluate with --sweep" in capsys.readouterr().err

    (tmp_path / "report.json").write_text(json.dumps(_report()))
    assert card_sweep_main(["--report", str(tmp_path / "report.json"), "--model", str(folder), "--name", "x"]) == 2
    assert "pass --name with one of: mine" in capsys.readouterr().err

    (tmp_path / "list.json").write_text("[1, 2]")  # JSON, but not an evaluate report: a sentence, no traceback
    assert card_sweep_main(["--report", str(tmp_path / "list.json"), "--model", str(folder), "--name", "x"]) == 2
    assert "is not a judge.evaluate --sweep report" in capsys.readouterr().err
