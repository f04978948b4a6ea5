"""The hint curve: simulated users, `judge.evaluate --hints`, the curve on a hint model's card.

.venv/bin/python -m pytest tests/test_hint_curve.py -q
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from skimage.color import rgb2lab

from judge import evaluate as ev
from judge.card_hints import hint_curve_for_card
from judge.card_hints import main as card_hints_main
from judge.hint_curve import bar_verdicts, hint_curve_lines, parse_hint_counts, run_hint_curve
from models.colorizer import Colorizer
from models.hint_card import verdict_lines
from models.hint_map import encode_hints
from models.hint_sampling import simulated_hints
from models.hints import MAX_HINT_HALF_SIDE, MAX_HINTS
from models.hub import load_model
from models.registry import create_model

PHOTOS = ("astronaut", "coffee", "chelsea")


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS:
        image = Image.fromarray(getattr(data, name)())
        image.thumbnail((96, 96))
        image.save(folder / f"{name}.png")
    return folder


@pytest.fixture(autouse=True)
def _empty_torch_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no LPIPS / FID weights from the machine


def _photo(side: int = 80) -> np.ndarray:
    return np.asarray(Image.fromarray(data.astronaut()).resize((side, side), Image.Resampling.LANCZOS))


# --- the simulated user ------------------------------------------------------------------------------------------
def test_simulated_hints_are_deterministic_nested_inside_the_photo_and_coloured_with_the_patch_mean():
    rgb = _photo(80)
    first = simulated_hints(rgb, 12, torch.Generator().manual_seed(3), grid=(40, 40))
    again = simulated_hints(rgb, 12, torch.Generator().manual_seed(3), grid=(40, 40))
    other = simulated_hints(rgb, 12, torch.Generator().manual_seed(4), grid=(40, 40))
    assert [s.hint for s in first] == [s.hint for s in again]
    assert [s.hint for s in first] != [s.hint for s in other]
    # the first n of a draw are the draw of n: 10 hints are the 5 hints plus five more
    fewer = simulated_hints(rgb, 5, torch.Generator().manual_seed(3), grid=(40, 40))
    assert [s.hint for s in fewer] == [s.hint for s in first[:5]]

    truth = rgb2lab(rgb / 255.0)
    for simulated in first:
        hint = simulated.hint
        assert -0.5 <= hint.x <= 79.5 and -0.5 <= hint.y <= 79.5
        assert 0 <= simulated.rows.start < simulated.rows.stop <= 80
        assert 0 <= simulated.columns.start < simulated.columns.stop <= 80
        assert hint.rgb is None
        expected = truth[simulated.rows, simulated.columns].reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(hint.lab, expected, atol=1e-3)
        # a patch of at most 7x7 working pixels (2x2 full-resolution pixels each)
        assert simulated.rows.stop - simulated.rows.start <= 2 * (2 * MAX_HINT_HALF_SIDE + 1)


def test_a_simulated_hint_lands_on_its_working_pixel_with_its_patch_size():
    rgb = _photo(80)
    (simulated,) = simulated_hints(rgb, 1, torch.Generator().manual_seed(0), grid=(40, 40))
    lightness = torch.from_numpy(rgb2lab(rgb / 255.0)[..., 0]).float()[None, None]
    hint_map = encode_hints([simulated.hint], lightness, (40, 40))
    rows, columns = torch.nonzero(hint_map[0, 2], as_tuple=True)
    # the working patch, scaled back to full resolution, is the patch the colour was taken from
    assert (2 * int(rows.min()), 2 * int(rows.max()) + 2) == (simulated.rows.start, simulated.rows.stop)
    assert (2 * int(columns.min()), 2 * int(columns.max()) + 2) == (simulated.columns.start, simulated.columns.stop)
    assert float(hint_map[0, 0, rows[0], columns[0]]) == pytest.approx(simulated.hint.lab[1] / 110, abs=1e-5)


# --- the curve -------------------------------------------------------------------------------------------------
class HintPainter(Colorizer):
    """A colorizer that follows hints perfectly and knows nothing else: the hinted ab inside each hint's patch,
    gray elsewhere. It records the hints every photo was given."""

    def __init__(self, name: str = "painter") -> None:
        super().__init__(name=name)
        self.given: list[int] = []

    @property
    def native_working_size(self) -> int:
        return 64

    @property
    def takes_hints(self) -> bool:
        return True

    def colorize(self, image: Any, **kwargs: Any) -> Image.Image:
        self.given.append(len(kwargs.get("hints") or []))
        return super().colorize(image, **kwargs)

    def predict_ab(self, l_norm: torch.Tensor, *, hint_map: torch.Tensor | None = None, **hooks: Any) -> torch.Tensor:
        if hint_map is None:
            return torch.zeros(l_norm.shape[0], 2, *l_norm.shape[-2:])
        return hint_map[:, :2].clone()


class Automatic(HintPainter):
    """The same, without hint inputs: the curve must never hand it hints (the contract would refuse them)."""

    @property
    def takes_hints(self) -> bool:
        return False


def _images() -> ev.EvalImages:
    rgb = [_photo(64), np.asarray(Image.fromarray(data.coffee()).resize((64, 64)))]
    return ev.EvalImages(ids=["a", "b"], rgb=rgb, split="validation")


def test_a_model_that_follows_hints_gets_a_falling_curve_and_meets_the_hint_error_bar():
    painter, automatic = HintPainter(), Automatic(name="automatic")
    curve = run_hint_curve([painter, automatic], _images(), counts=[0, 5, 10, 20], seed=1, progress=False)

    assert automatic.given == [0, 0]  # two photos at 0 hints, never any hint
    assert painter.given == [0, 0, 5, 5, 10, 10, 20, 20]
    assert curve["models"]["automatic"] == {
        "takes_hints": False,
        "counts": {0: curve["models"]["automatic"]["counts"][0]},
    }
    rows = curve["models"]["painter"]["counts"]
    assert set(rows) == {0, 5, 10, 20}
    assert "hint_error" not in rows[0]
    assert rows[20]["ciede2000"] < rows[5]["ciede2000"] < rows[0]["ciede2000"]
    assert rows[10]["hint_error"] < 5.0 and rows[10]["hints_within_5"] > 0.5
    assert curve["bars"]["painter"]["hint_error_met"] is True
    assert "automatic" not in curve["bars"]
    assert curve["seed"] == 1 and curve["counts"] == [0, 5, 10, 20]
    assert curve["grid"] == 64  # the points are drawn at the hint model's working size, as in training

    # the same seed gives the same hints, so the same curve
    assert (
        run_hint_curve([HintPainter()], _images(), counts=[0, 5, 10, 20], seed=1, progress=False)["models"]["painter"]
        == curve["models"]["painter"]
    )


def test_a_model_that_ignores_hints_fails_both_bars_and_the_report_says_so():
    ignoring = {"takes_hints": True, "counts": {0: {"ciede2000": 12.0}, 10: {"ciede2000": 11.5, "hint_error": 20.0}}}
    verdicts = bar_verdicts(ignoring)
    assert verdicts["ciede2000_reduction"] == pytest.approx(1 / 24)
    assert verdicts["ciede2000_reduction_met"] is False and verdicts["hint_error_met"] is False
    following = {"takes_hints": True, "counts": {"0": {"ciede2000": 12.0}, "10": {"ciede2000": 8.0, "hint_error": 3}}}
    assert bar_verdicts(following)["ciede2000_reduction_met"] is True  # JSON keys (strings) work too
    assert bar_verdicts({"takes_hints": True, "counts": {0: {"ciede2000": 12.0}}})["hint_error_met"] is None

    row = {"ciede2000": 12.0, "ab_auc": 0.87, "colourfulness_delta": 30.0}
    curve = {
        "counts": [0, 10],
        "seed": 0,
        "grid": 256,
        "edge_share": 0.25,
        "models": {"m": ignoring | {"counts": {0: row, 10: {**row, "hint_error": 20.0, "hints_within_5": 0.1}}}},
        "bars": {"m": verdicts},
    }
    text = "\n".join(hint_curve_lines(curve))
    assert "CIEDE2000 at least 30 % lower than with 0 hints (measured: 4.2 % lower): **not met**" in text
    assert "within 5 CIEDE2000 of the hint (measured: 20.00 on average): **not met**" in text
    worse = bar_verdicts({"takes_hints": True, "counts": {0: {"ciede2000": 10.0}, 10: {"ciede2000": 10.5}}})
    assert "(measured: 5.0 % higher): **not met**" in verdict_lines(worse)[0]
    assert "(measured: 0.0 % lower)" in verdict_lines({"ciede2000_reduction": -0.0001})[0]
    assert "not measured (evaluate with 10 in --hints)" in verdict_lines({})[1]


def test_evaluate_hints_writes_the_curve_chart_and_report_fields(tmp_path, photos):
    create_model("unet_tiny", hints=True).save_pretrained(tmp_path / "hinted")
    create_model("unet_tiny").save_pretrained(tmp_path / "plain")
    out = tmp_path / "report"
    argv = ["--models", f"hinted={tmp_path / 'hinted'}", f"plain={tmp_path / 'plain'}", "--dataset", str(photos)]
    argv += ["--out", str(out), "--image_size", "64", "--working_size", "64", "--n_boot", "50", "--no_progress"]
    assert ev.main([*argv, "--hints", "10,0,2,2"]) == 0

    report = json.loads((out / "report.json").read_text())
    curve = report["hints"]
    assert curve["counts"] == [0, 2, 10] and curve["seed"] == 0
    assert list(curve["models"]["hinted"]["counts"]) == ["0", "2", "10"]
    assert set(curve["models"]["hinted"]["counts"]["10"]) == {
        "ciede2000",
        "ab_auc",
        "colourfulness_delta",
        "hint_error",
        "hints_within_5",
    }
    assert curve["models"]["plain"] == {"takes_hints": False, "counts": {"0": curve["models"]["plain"]["counts"]["0"]}}
    assert list(curve["models"]["grayscale"]["counts"]) == ["0"]
    assert set(curve["bars"]) == {"hinted"}
    assert isinstance(curve["bars"]["hinted"]["ciede2000_reduction_met"], bool)
    # at 0 hints the curve is the main table's colouring (one photo at a time instead of a batch)
    main_ciede = report["summary"]["hinted"]["ciede2000"]["mean"]
    assert curve["models"]["hinted"]["counts"]["0"]["ciede2000"] == pytest.approx(main_ciede, abs=1e-3)

    markdown = (out / "report.md").read_text()
    assert "## Hint curve" in markdown and "| hinted | 10 |" in markdown
    assert "Does not take hints (scored at 0 hints only, never fed hints): grayscale, plain." in markdown
    assert "With 10 hints, CIEDE2000 at least 30 % lower than with 0 hints" in markdown
    assert "within 5 CIEDE2000 of the hint" in markdown and "hint_curve.png" in markdown
    with Image.open(out / "charts" / "hint_curve.png") as chart:
        assert chart.size[0] > 300 and chart.size[1] > 200


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("0,abc", "expected numbers of hints separated by commas (e.g. 0,1,2,5,10,20), got '0,abc'"),
        ("0,-1", "hint counts must be whole numbers from 0 to 64"),
        (f"0,{MAX_HINTS + 1}", f"got {MAX_HINTS + 1}"),
        (",", "expected numbers of hints separated by commas"),
    ],
)
def test_bad_hint_counts_are_one_sentence(tmp_path, photos, capsys, value, says):
    with pytest.raises(SystemExit) as exit_:
        ev.main(["--models", "x", "--dataset", str(photos), "--out", str(tmp_path / "r"), "--hints", value])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "argument --hints: " in error and says in error and "Traceback" not in error
    assert parse_hint_counts(" 5, 0 ,5") == [0, 5]


# --- the card ------------------------------------------------------------------------------------------------------
def _report() -> dict:
    def row(ciede: float, error: float | None = None) -> dict:
        values = {"ciede2000": ciede, "ab_auc": 0.87, "colourfulness_delta": 25.0}
        return values if error is None else {**values, "hint_error": error, "hints_within_5": 0.8}

    return {
        "config": {"dataset": "data/corpus", "split": "validation", "image_size": 512, "sources": {"mine": "out/x"}},
        "n_images": 49,
        "hints": {
            "counts": [0, 1, 10],
            "seed": 0,
            "grid": 256,
            "edge_share": 0.25,
            "models": {
                "grayscale": {"takes_hints": False, "counts": {"0": row(12.87)}},
                "mine": {"takes_hints": True, "counts": {"0": row(12.1), "1": row(11.6, 6.1), "10": row(7.9, 3.2)}},
            },
            "bars": {
                "mine": {
                    "ciede2000_reduction": 0.3471,
                    "ciede2000_reduction_met": True,
                    "hint_error": 3.2,
                    "hint_error_met": True,
                }
            },
        },
    }


def test_the_card_block_names_its_command_and_every_count():
    block = hint_curve_for_card(_report(), "mine", source="weights/colour_hints")
    assert block["command"] == (
        "python -m judge.evaluate --models weights/colour_hints --dataset data/corpus --split validation "
        "--image_size 512 --hints 0,1,10 --seed 0"
    )
    assert block["counts"]["10"]["hint_error"] == 3.2 and block["n_images"] == 49
    assert block["bars"]["ciede2000_reduction_met"] is True
    with pytest.raises(ValueError, match="grayscale does not take hints"):
        hint_curve_for_card(_report(), "grayscale")
    with pytest.raises(ValueError, match="pass --name with one of: mine"):
        hint_curve_for_card(_report(), "other")


def test_the_cli_writes_the_curve_into_a_hint_models_card_and_a_resave_keeps_it(tmp_path):
    folder = tmp_path / "model"
    create_model("unet_tiny", hints=True).save_pretrained(folder, dtype=torch.float16)
    (tmp_path / "report.json").write_text(json.dumps(_report()))

    assert card_hints_main(["--report", str(tmp_path / "report.json"), "--model", str(folder), "--name", "mine"]) == 0
    card = (folder / "README.md").read_text()
    assert "## Hint curve" in card and "| 10 | 7.90 | 0.8700 | 25.0 | 3.20 | 0.80 |" in card
    assert "(measured: 34.7 % lower): **met**" in card
    assert "## Colour hints" in card and "--hints hints.json" in card
    assert "hints = [Hint(x=412, y=230, rgb=(200, 30, 40))" in card and "hints=hints" in card
    assert "## Run with ONNX Runtime" not in card  # colorlab-export refuses hint models
    assert "- input: L / 50 - 1 and a colour-hint map" in card and "shape (B, 4, H, W)" in card

    model = load_model(folder)
    assert model.card_data["hint_curve"]["counts"]["1"]["ciede2000"] == 11.6
    model.save_pretrained(tmp_path / "again")  # a re-save (bundling, a push) keeps the section
    assert "| 10 | 7.90 |" in (tmp_path / "again" / "README.md").read_text()
    assert load_model(tmp_path / "again").card_data["hint_curve"] == model.card_data["hint_curve"]


def test_a_card_without_hints_says_nothing_about_them_and_wrong_inputs_are_sentences(tmp_path, capsys):
    plain = tmp_path / "plain"
    create_model("unet_tiny").save_pretrained(plain)
    plain_card = (plain / "README.md").read_text()
    assert "Colour hints" not in plain_card and "## Run with ONNX Runtime" in plain_card
    (tmp_path / "report.json").write_text(json.dumps(_report()))
    argv = ["--report", str(tmp_path / "report.json"), "--name", "mine"]
    assert card_hints_main([*argv, "--model", str(plain)]) == 2
    assert "does not take hints, so its card gets no hint curve" in capsys.readouterr().err
    assert "hint_curve" not in load_model(plain).card_data

    (tmp_path / "plain.json").write_text(json.dumps({"config": {}}))
    assert card_hints_main(["--report", str(tmp_path / "plain.json"), "--model", str(plain), "--name", "mine"]) == 2
    assert "run judge.evaluate with --hints 0,1,2,5,10,20" in capsys.readouterr().err
    (tmp_path / "list.json").write_text("[1, 2]")
    assert card_hints_main(["--report", str(tmp_path / "list.json"), "--model", str(plain), "--name", "mine"]) == 2
    assert "is not a judge.evaluate --hints report" in capsys.readouterr().err
