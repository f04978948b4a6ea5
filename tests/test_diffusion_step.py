"""The diffusers ControlNet training step (trainer/diffusion_step.py) on the tiny in-code components.

.venv/bin/python -m pytest tests/test_diffusion_step.py -q -x
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler
from PIL import Image
from skimage import data as skimage_data

from models.color import rgb_to_lab, rgb_to_model_space
from models.diffusion import DiffusionColorizer, create_diffusion_components
from models.diffusion_components import DiffusionComponents, tokenize_prompts
from models.diffusion_tiny import TINY_BASE_MODEL
from models.hub import load_colorizer
from trainer.diffusion_step import (
    controlnet_training_step,
    drop_prompts,
    make_training_batch,
    prepare_for_training,
)

SIDE = 32


def _photos(count: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_norm, ab_norm) crops of real photographs, as the trainer's data pipeline yields them."""
    crops = []
    for name in ("astronaut", "chelsea", "coffee")[:count]:
        image = Image.fromarray(getattr(skimage_data, name)()).resize((SIDE, SIDE), Image.Resampling.LANCZOS)
        crops.append(torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255.0)
    return rgb_to_model_space(torch.stack(crops))


def _components(weight_dtype: torch.dtype = torch.float32) -> DiffusionComponents:
    return prepare_for_training(create_diffusion_components(TINY_BASE_MODEL), weight_dtype=weight_dtype, device="cpu")


def _loss(components: DiffusionComponents, batch: dict[str, torch.Tensor], seed: int, **kwargs: float) -> float:
    with torch.no_grad():
        return float(
            controlnet_training_step(components, batch, generator=torch.Generator().manual_seed(seed), **kwargs)
        )


def test_training_batch_encodes_the_photo_and_its_lightness() -> None:
    l_norm, ab_norm = _photos()
    components = create_diffusion_components(TINY_BASE_MODEL)
    batch = make_training_batch(l_norm, ab_norm, components.tokenizer, captions=["a cat", ""])
    assert batch["pixel_values"].shape == (2, 3, SIDE, SIDE)
    assert batch["conditioning_pixel_values"].shape == (2, 3, SIDE, SIDE)
    assert batch["input_ids"].shape == (2, components.tokenizer.model_max_length)
    lightness = (l_norm + 1) * 50
    assert torch.allclose(batch["conditioning_pixel_values"], (lightness / 100).expand(-1, 3, -1, -1), atol=1e-6)
    # the target decodes back to the photo's Lab (the crops come from real 8-bit sRGB, so they are in gamut)
    lab = rgb_to_lab((batch["pixel_values"] + 1) / 2)
    assert float((lab[:, :1] - lightness).abs().max()) < 1e-2
    assert float((lab[:, 1:] - ab_norm * 110).abs().max()) < 1e-2


def test_training_batch_rejects_mismatched_inputs() -> None:
    l_norm, ab_norm = _photos()
    tokenizer = create_diffusion_components(TINY_BASE_MODEL).tokenizer
    with pytest.raises(ValueError, match="one caption per image"):
        make_training_batch(l_norm, ab_norm, tokenizer, captions=["only one"])
    with pytest.raises(ValueError, match="same size"):
        make_training_batch(l_norm, ab_norm[..., :16], tokenizer)


def test_three_steps_train_only_the_controlnet_and_the_result_saves_and_loads(tmp_path: Path) -> None:
    components = _components()
    l_norm, ab_norm = _photos()
    batch = make_training_batch(l_norm, ab_norm, components.tokenizer, captions=["a portrait", "a cat"])
    base_before = {k: v.clone() for k, v in components.unet.state_dict().items()}
    control_before = {k: v.clone() for k, v in components.controlnet.state_dict().items()}
    optimizer = torch.optim.AdamW(components.controlnet.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(3):
        loss = controlnet_training_step(components, batch, proportion_empty_prompts=0.5, generator=generator)
        loss.backward()
        assert all(p.grad is None for module in components.base_modules() for p in module.parameters())
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert all(np.isfinite(losses)) and len(set(losses)) == 3
    assert all(torch.equal(v, base_before[k]) for k, v in components.unet.state_dict().items())
    changed = [k for k, v in components.controlnet.state_dict().items() if not torch.equal(v, control_before[k])]
    assert "controlnet_mid_block.weight" in changed  # the zero convolution learned, so the image now steers

    colorizer = DiffusionColorizer(components)
    assert components.controlnet.training, "building a colorizer mid-training must not switch the ControlNet to eval"
    folder = colorizer.save_pretrained(tmp_path / "trained")
    loaded = load_colorizer(folder)
    trained = components.controlnet.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in loaded.components.controlnet.state_dict().items())
    image = Image.fromarray(skimage_data.camera()).resize((40, 40))
    expected = colorizer.colorize(image, working_size=24, num_inference_steps=2)
    assert np.array_equal(
        np.asarray(loaded.colorize(image, working_size=24, num_inference_steps=2)), np.asarray(expected)
    )


def test_the_step_is_reproducible_from_its_generator() -> None:
    components = _components()
    batch = make_training_batch(*_photos(), components.tokenizer)
    assert _loss(components, batch, seed=5) == _loss(components, batch, seed=5)
    assert _loss(components, batch, seed=5) != _loss(components, batch, seed=6)


def test_proportion_empty_prompts_replaces_captions_by_the_empty_prompt() -> None:
    components = _components()
    l_norm, ab_norm = _photos()
    captioned = make_training_batch(l_norm, ab_norm, components.tokenizer, captions=["a red car", "green grass"])
    uncaptioned = make_training_batch(l_norm, ab_norm, components.tokenizer, captions=["", ""])
    # captions matter to the loss, and with p = 1 every caption is dropped: the loss is the uncaptioned one
    assert _loss(components, captioned, seed=1) != _loss(components, uncaptioned, seed=1)
    dropped_all = _loss(components, captioned, seed=1, proportion_empty_prompts=1.0)
    assert dropped_all == _loss(components, uncaptioned, seed=1, proportion_empty_prompts=1.0)
    ids = drop_prompts(captioned["input_ids"], components.tokenizer, 1.0, torch.Generator().manual_seed(1))
    assert torch.equal(ids, uncaptioned["input_ids"])
    kept = drop_prompts(captioned["input_ids"], components.tokenizer, 0.0, None)
    assert torch.equal(kept, captioned["input_ids"])
    some = drop_prompts(
        captioned["input_ids"].repeat(32, 1), components.tokenizer, 0.5, torch.Generator().manual_seed(0)
    )
    empty = tokenize_prompts(components.tokenizer, [""])
    dropped = (some == empty).all(dim=1)
    assert 0 < int(dropped.sum()) < 64
    with pytest.raises(ValueError, match="between 0 and 1"):
        drop_prompts(captioned["input_ids"], components.tokenizer, 1.5, None)


def test_v_prediction_bases_regress_the_velocity() -> None:
    components = _components()
    batch = make_training_batch(*_photos(), components.tokenizer)
    epsilon = _loss(components, batch, seed=2)
    components.scheduler = DDIMScheduler.from_config(components.scheduler.config, prediction_type="v_prediction")
    velocity = _loss(components, batch, seed=2)
    assert np.isfinite(velocity) and velocity != epsilon


def test_a_half_precision_base_trains_a_float32_controlnet_and_still_samples() -> None:
    components = _components(torch.bfloat16)
    assert components.unet.dtype == torch.bfloat16 and components.controlnet.dtype == torch.float32
    batch = make_training_batch(*_photos(), components.tokenizer)
    loss = controlnet_training_step(components, batch, generator=torch.Generator().manual_seed(0))
    loss.backward()
    grads = [p.grad for p in components.controlnet.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    # validation during training samples with the mixed dtypes as they are
    l_norm, _ = _photos(1)
    ab = DiffusionColorizer(components).predict_ab(l_norm[..., :24, :24], num_inference_steps=2)
    assert ab.shape == (1, 2, 24, 24) and torch.isfinite(ab).all()


def test_a_half_precision_controlnet_is_refused() -> None:
    components = create_diffusion_components(TINY_BASE_MODEL)
    components.controlnet.to(torch.bfloat16)
    with pytest.raises(ValueError, match="must be float32"):
        prepare_for_training(components, weight_dtype=torch.bfloat16, device="cpu")
