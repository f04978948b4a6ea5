"""Registry and networks: every tiny variant trains (shape, range, gradients); pix2pix networks; clear errors."""

from __future__ import annotations

import pytest
import torch

from models.base import ColorizationNet
from models.pix2pix import PatchDiscriminator, UNetGenerator
from models.registry import create_model, is_model, list_models, register_model

TINY_MODELS = list_models("*tiny")
FULL_SIZE_MODELS = [name for name in list_models() if not name.endswith("_tiny")]


def test_registry_has_a_tiny_twin_for_every_architecture():
    assert len(TINY_MODELS) >= 6
    assert {"pix2pix_unet256", "pix2pix_unet256_w32", "pix2pix_tiny"} <= set(list_models("pix2pix*"))
    for name in TINY_MODELS:
        assert is_model(name)
    assert not is_model("no_such_model")


@pytest.mark.parametrize("name", TINY_MODELS)
def test_tiny_model_forward_shape_range_and_gradients(name):
    model = create_model(name).train()
    assert isinstance(model, ColorizationNet)
    side = max(32, 2 * model.size_multiple)
    l_norm = torch.rand(2, 1, side, side) * 2 - 1
    ab_norm = model(l_norm)
    assert ab_norm.shape == (2, 2, side, side)
    assert torch.isfinite(ab_norm).all()
    assert ab_norm.abs().max() <= 1.0  # tanh head: predictions stay in normalised ab
    target = torch.rand_like(ab_norm) * 2 - 1
    torch.nn.functional.l1_loss(ab_norm, target).backward()
    starved = [key for key, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not starved, f"{name}: parameters without gradient: {starved}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", TINY_MODELS)
def test_tiny_model_is_deterministic_in_eval_mode_and_batch_independent(name):
    model = create_model(name).eval()
    side = max(32, 2 * model.size_multiple)
    batch = torch.rand(3, 1, side, side) * 2 - 1
    with torch.inference_mode():
        together = model(batch)
        alone = model(batch[1:2])
        again = model(batch)
    assert torch.equal(together, again)  # dropout is off in eval mode
    torch.testing.assert_close(together[1:2], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", [n for n in TINY_MODELS if create_model(n).size_multiple > 1])
def test_size_not_divisible_by_the_downsampling_factor_says_so(name):
    model = create_model(name).eval()
    multiple = model.size_multiple
    with pytest.raises(ValueError, match=rf"divisible by {multiple}.*resize or crop"):
        model(torch.zeros(1, 1, 2 * multiple + 1, 2 * multiple))


def test_pix2pix_error_names_two_to_the_depth():
    generator = UNetGenerator(depth=5, base_width=4)
    assert generator.size_multiple == 32
    with pytest.raises(ValueError, match=r"divisible by 32 \(it downsamples 5 times\), got 48x64"):
        generator(torch.zeros(1, 1, 48, 64))


def test_wrong_input_channels_are_rejected_with_a_hint():
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\).*rgb_to_model_space"):
        create_model("simple_cnn_tiny")(torch.zeros(1, 3, 16, 16))


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="Unknown model 'pix2pix_huge'") as error:
        create_model("pix2pix_huge")
    for name in list_models():
        assert name in str(error.value)


def test_overrides_reach_the_constructor_and_the_card_records_the_variant():
    model = create_model("unet_tiny", width=4)
    assert model.num_parameters() < create_model("unet_tiny").num_parameters()
    assert model.card_data["variant"] == "unet_tiny"


def test_registering_a_taken_name_fails():
    def pix2pix_tiny():  # same function name as the built-in variant
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="already registered"):
        register_model(pix2pix_tiny)


@pytest.mark.parametrize(("name", "millions"), [("pix2pix_unet256", 54.4), ("pix2pix_unet256_w32", 13.6)])
def test_pix2pix_generators_have_the_documented_size_and_dropout(name, millions):
    model = create_model(name)
    assert model.size_multiple == 256
    assert round(model.num_parameters() / 1e6, 1) == millions
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(dropouts) == 3 and all(m.p == 0.5 for m in dropouts)  # the three innermost 8x-wide decoders


def test_patch_discriminator_scores_patches_of_l_and_ab():
    discriminator = PatchDiscriminator(base_width=8)
    logits = discriminator(torch.zeros(2, 1, 256, 256), torch.zeros(2, 2, 256, 256))
    assert logits.shape == (2, 1, 30, 30)  # the paper's 70x70 PatchGAN on 256 px gives a 30x30 grid
    spectral = PatchDiscriminator(base_width=8, use_spectral_norm=True, norm="instance")
    assert any("weight_orig" in key for key, _ in spectral.named_parameters())
    with pytest.raises(ValueError, match="same height and width"):
        discriminator(torch.zeros(1, 1, 64, 64), torch.zeros(1, 2, 32, 32))


def test_bad_constructor_arguments_fail_clearly():
    with pytest.raises(ValueError, match="norm must be"):
        UNetGenerator(norm="layer")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="depth must be >= 2"):
        UNetGenerator(depth=1)


def test_saved_weights_are_readable_by_others_as_the_umask_allows(tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        create_model("unet_tiny").save_pretrained(tmp_path / "saved")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "saved" / "model.safetensors").stat().st_mode)
    assert mode == 0o644  # safetensors alone writes 0600, which a Space running as another user cannot read
