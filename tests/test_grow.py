"""Growing a trained network (models.grow, the trainer's --init_from with --model_overrides): new blocks start as
the identity, trained weights are kept, and an override that would throw trained weights away is refused.

.venv/bin/python -m pytest tests/test_grow.py -q -x
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_support import make_photo_folder, run_trainer

from models.grow import with_overrides
from models.hub import load_model
from models.registry import create_model


def test_a_global_context_block_starts_as_the_identity_and_keeps_every_weight():
    torch.manual_seed(0)
    trained = create_model("unet_tiny").eval()
    grown = with_overrides(trained, {"global_context": True}).eval()
    assert grown.global_context is not None and trained.global_context is None
    l_norm = torch.rand(2, 1, 32, 32) * 2 - 1
    torch.testing.assert_close(grown(l_norm), trained(l_norm))
    old = trained.state_dict()
    assert all(torch.equal(old[name], value) for name, value in grown.state_dict().items() if name in old)
    assert with_overrides(trained, {}) is trained


def test_the_block_learns_a_whole_image_colour_cast():
    """What it is for: a cast that depends on the whole photo reaches every pixel, whatever the receptive field."""
    grown = with_overrides(create_model("unet_tiny", global_context=False), {"global_context": True})
    l_norm = torch.rand(4, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        before = grown(l_norm)
    torch.nn.init.normal_(grown.global_context.mlp[-1].weight, std=0.5)
    with torch.no_grad():
        after = grown(l_norm)
    assert (after - before).abs().mean() > 1e-3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"width": 4}, "would drop or reshape trained weights"),  # every weight changes shape
        ({"depth": 3}, "would change what the --init_from model computes"),  # shapes kept, meaning not
    ],
)
def test_overrides_that_would_discard_what_was_learned_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        with_overrides(create_model("unet_tiny"), overrides)


def test_an_unknown_override_is_one_sentence():
    with pytest.raises(ValueError, match="do not fit a PlainUNet"):
        with_overrides(create_model("unet_tiny"), {"wings": 2})


def test_the_trainer_grows_the_init_from_model_and_saves_the_block(tmp_path: Path):
    photos = make_photo_folder(tmp_path / "photos")
    torch.manual_seed(0)
    create_model("unet_tiny").save_pretrained(tmp_path / "start")
    out = run_trainer(
        [
            "--config", "tiny", "--model", "unet_tiny", "--discriminator", "none", "--dataset", str(photos),
            "--output_dir", str(tmp_path / "run"), "--init_from", str(tmp_path / "start"), "--max_train_steps", "2",
            "--model_overrides", '{"global_context": true}', "--val_fraction", "0", "--final_model", "last",
        ]
    )  # fmt: skip
    assert json.loads((out / "config.json").read_text())["global_context"] is True
    grown = load_model(out)
    assert grown.global_context is not None
    assert grown.global_context.mlp[-1].weight.abs().sum() > 0  # it trained
