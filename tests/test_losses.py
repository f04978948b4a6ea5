"""Training losses: --losses weights, SSIM, a perceptual loss that refuses to run without VGG weights, GAN losses.

.venv/bin/python -m pytest tests/test_losses.py -q -x
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.color import rgb_to_model_space
from trainer.losses import GANLoss, ReconstructionLoss, VGG16Features, ssim, ssim_map


@pytest.fixture
def lab_batch(photo) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, ab) of two real photos at 32 px, normalised as the models see them."""
    rgb = torch.stack([torch.from_numpy(np.array(photo(n).resize((32, 32)))) for n in ("coffee", "chelsea")])
    return rgb_to_model_space(rgb.permute(0, 3, 1, 2).float() / 255)


def test_spec_weights_and_total(lab_batch):
    l_norm, ab = lab_batch
    pred = (ab + 0.1 * torch.randn_like(ab)).clamp(-1, 1)
    criterion = ReconstructionLoss.from_spec("l1, mse:0.5 ,ssim:2")
    assert criterion.weights == {"l1": 1.0, "mse": 0.5, "ssim": 2.0}
    total, parts = criterion(l_norm, pred, ab)
    torch.testing.assert_close(parts["l1"], F.l1_loss(pred, ab))
    torch.testing.assert_close(parts["mse"], F.mse_loss(pred, ab))
    torch.testing.assert_close(parts["ssim"], 1 - ssim(pred, ab))
    torch.testing.assert_close(total, parts["l1"] + 0.5 * parts["mse"] + 2 * parts["ssim"])


def test_losses_are_zero_for_a_perfect_prediction_and_give_gradients(lab_batch):
    l_norm, ab = lab_batch
    criterion = ReconstructionLoss.from_spec("l1:1,ssim:0.5")
    total, _ = criterion(l_norm, ab, ab)
    assert total.abs().item() < 1e-5
    pred = torch.zeros_like(ab, requires_grad=True)
    total, _ = criterion(l_norm, pred, ab)
    total.backward()
    assert total.item() > 0 and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_ssim_falls_with_noise():
    torch.manual_seed(0)
    image = torch.rand(1, 2, 32, 32) * 2 - 1
    assert ssim(image, image).item() == pytest.approx(1.0, abs=1e-5)
    scores = [ssim(image, image + level * torch.randn_like(image)).item() for level in (0.05, 0.2, 0.8)]
    assert scores == sorted(scores, reverse=True) and scores[-1] < 0.5


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ssim_matches_scikit_image(photo, dtype):
    """The loss's SSIM against the reference: scikit-image with the Gaussian window of Wang et al. 2004."""
    from skimage.metrics import structural_similarity

    # ab of a real photo (what the loss compares) and a blurred, noisy, shifted prediction of it.
    rgb = torch.from_numpy(np.array(photo("chelsea").resize((96, 64)))).permute(2, 0, 1)[None].to(dtype) / 255
    _, target = rgb_to_model_space(rgb)
    generator = torch.Generator().manual_seed(0)
    pred = F.avg_pool2d(target, 3, stride=1, padding=1) * 0.7 + 0.05 * torch.randn(target.shape, generator=generator)
    pred, target = pred.to(dtype), target.to(dtype)
    reference = structural_similarity(
        target[0].permute(1, 2, 0).double().numpy(),
        pred[0].permute(1, 2, 0).double().numpy(),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=2.0,  # normalised ab spans [-1, 1], the loss's default data_range
        channel_axis=-1,
    )
    assert 0.2 < reference < 0.95  # a comparison that means something: neither identical nor unrelated
    border = 5  # scikit-image leaves out the (11 - 1) / 2 pixels its window overhangs; the loss pads them
    interior = ssim_map(target, pred)[..., border:-border, border:-border].mean().item()
    # float64 agrees to 1e-7 (the Gaussian window is built in float32), float32 to float32 rounding.
    assert interior == pytest.approx(reference, abs=1e-6 if dtype == torch.float64 else 1e-5)
    # The whole-image mean the loss uses differs only by its border pixels.
    assert ssim(target, pred).item() == pytest.approx(ssim_map(target, pred).mean().item())
    assert ssim(target, pred).item() == pytest.approx(reference, abs=0.05)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("l2", "Unknown loss \\['l2'\\]; choose from l1, huber, mse, ssim, perceptual, classes"),
        ("l1:heavy", "--losses item 'l1:heavy' needs a number"),
        (" , ", "--losses is empty"),
        ("l1,perceptual:0.1", "The perceptual loss needs ImageNet VGG16 weights"),
    ],
)
def test_bad_specs_are_one_sentence(spec, message):
    with pytest.raises(ValueError, match=message):
        ReconstructionLoss.from_spec(spec)


def test_perceptual_weights_file_is_checked(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        ReconstructionLoss.from_spec("perceptual", perceptual_weights=str(tmp_path / "vgg16.pth"))
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="it is not a VGG16 state dict"):
        VGG16Features.from_file(tmp_path / "partial.pth")
    wrong = {f"features.{k}": v for k, v in VGG16Features().features.state_dict().items()}
    wrong["features.0.weight"] = torch.zeros(32, 3, 3, 3)
    torch.save(wrong, tmp_path / "wrong.pth")  # one tensor of the wrong shape: a sentence, not a traceback
    with pytest.raises(ValueError, match="wrong shape"):
        VGG16Features.from_file(tmp_path / "wrong.pth")
    (tmp_path / "text.pth").write_text("not a torch file")
    with pytest.raises(ValueError, match="could not be read as a state dict"):
        VGG16Features.from_file(tmp_path / "text.pth")


def test_perceptual_loss_loads_a_torchvision_layout_state_dict(tmp_path, lab_batch):
    # Arbitrary numbers in torchvision's key layout: this checks loading and wiring only; no metric is reported.
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in VGG16Features().features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(1)  # other torchvision keys are ignored
    torch.save(state, tmp_path / "vgg16.pth")
    criterion = ReconstructionLoss.from_spec("l1,perceptual:0.1", perceptual_weights=str(tmp_path / "vgg16.pth"))
    assert not any(p.requires_grad for p in criterion.vgg.parameters())
    l_norm, ab = lab_batch
    _, parts = criterion(l_norm, ab, ab)
    assert parts["perceptual"].item() == pytest.approx(0.0, abs=1e-6)
    pred = torch.zeros_like(ab, requires_grad=True)
    total, parts = criterion(l_norm, pred, ab)
    total.backward()
    assert parts["perceptual"].item() > 0 and pred.grad.abs().sum() > 0


# --- GAN losses (pix2pix's adversarial objective) ---------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "real_score", "fake_score"), [("vanilla", 5.0, -5.0), ("lsgan", 1.0, 0.0), ("hinge", 1.0, -1.0)]
)
def test_gan_losses_prefer_correct_scores(mode, real_score, fake_score):
    loss = GANLoss(mode)
    looks_real = torch.full((2, 1, 4, 4), real_score)
    looks_fake = torch.full((2, 1, 4, 4), fake_score)
    assert loss(looks_real, target_is_real=True) < loss(looks_fake, target_is_real=True)
    assert loss(looks_fake, target_is_real=False) < loss(looks_real, target_is_real=False)
    # the generator is rewarded for fooling the discriminator
    fooled = loss(looks_real, target_is_real=True, for_discriminator=False)
    assert fooled < loss(looks_fake, target_is_real=True, for_discriminator=False)


def test_label_smoothing_moves_the_real_target():
    logits = torch.full((1, 1, 2, 2), 10.0)
    assert GANLoss("vanilla", real_label=0.9)(logits, target_is_real=True) > GANLoss("vanilla")(
        logits, target_is_real=True
    )


def test_an_unknown_gan_mode_fails_clearly():
    with pytest.raises(ValueError, match="gan mode must be"):
        GANLoss("wasserstein")  # type: ignore[arg-type]


def test_ciede2000_loss_is_the_metric_evaluation_reports(lab_batch):
    """The 'ciede2000' loss on (L, predicted ab) equals scikit-image's CIEDE2000 on the same Lab values."""
    from skimage.color import deltaE_ciede2000

    l_norm, ab = lab_batch
    torch.manual_seed(0)
    pred = (0.6 * ab + 0.05 * torch.randn_like(ab)).clamp(-1, 1)
    criterion = ReconstructionLoss.from_spec("ciede2000")
    total, parts = criterion(l_norm, pred, ab)
    as_lab = lambda a: torch.cat([(l_norm + 1) * 50, a * 110], dim=1).permute(0, 2, 3, 1).double().numpy()  # noqa: E731
    reference = deltaE_ciede2000(as_lab(ab), as_lab(pred), channel_axis=-1).mean()
    assert total.item() == pytest.approx(reference, rel=1e-4) and parts["ciede2000"].item() > 1
    perfect, _ = criterion(l_norm, ab, ab)
    assert perfect.item() < 1e-3


def test_colourfulness_loss_is_the_colourfulness_gap_evaluation_reports(lab_batch):
    """The 'colourfulness' loss uses the formula of judge.metrics.colourfulness, per image, on the rebuilt RGB."""
    from judge.metrics import colourfulness as reported
    from models.color import model_space_to_rgb

    l_norm, ab = lab_batch
    pred = 0.5 * ab
    _, parts = ReconstructionLoss.from_spec("colourfulness")(l_norm, pred, ab)
    as_rgb = lambda a: model_space_to_rgb(l_norm, a).permute(0, 2, 3, 1).numpy()  # noqa: E731
    gaps = [abs(reported(p) - reported(t)) for p, t in zip(as_rgb(pred), as_rgb(ab), strict=True)]
    assert parts["colourfulness"].item() == pytest.approx(float(np.mean(gaps)), rel=1e-3)
    assert parts["colourfulness"].item() > 1  # halving the colour is a real gap
    perfect, _ = ReconstructionLoss.from_spec("colourfulness")(l_norm, ab, ab)
    assert perfect.item() < 1e-3
