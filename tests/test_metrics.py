"""Metric functions against references: scikit-image, hand-computed synthetic images, and invariants.

.venv/bin/python -m pytest tests/test_metrics.py -q
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.transform import resize

from judge import metrics
from judge.fid import frechet_distance, inception_features, kernel_inception_distance, load_fid_inception
from judge.inception import FIDInceptionV3
from judge.lpips_metric import LPIPS, AlexNetTrunk, load_lpips, lpips_linear_weights_file
from judge.pretrained import WeightsUnavailable, read_state_dict


@pytest.fixture(scope="module")
def photo_pair() -> tuple[np.ndarray, np.ndarray]:
    """A real photo (64 px) and a degraded copy: shifted colours plus noise."""
    target = (resize(data.astronaut(), (64, 64), anti_aliasing=True) * 255).round().astype(np.uint8)
    noise = np.random.default_rng(0).normal(0, 12, target.shape)
    pred = np.clip(target.astype(float) * [0.9, 1.05, 0.8] + noise, 0, 255).round().astype(np.uint8)
    return pred, target


def _solid(rgb: tuple[int, int, int], size: int = 8) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (size, size, 3)).copy()


def test_psnr_matches_scikit_image_for_uint8_and_float(photo_pair):
    pred, target = photo_pair
    assert metrics.psnr(pred, target) == pytest.approx(peak_signal_noise_ratio(target, pred), rel=1e-9)
    assert metrics.psnr(pred / 255.0, target / 255.0) == pytest.approx(peak_signal_noise_ratio(target, pred), rel=1e-9)


def test_psnr_ab_uses_a_220_peak_on_both_chroma_channels(photo_pair):
    pred_lab, target_lab = rgb2lab(photo_pair[0]), rgb2lab(photo_pair[1])
    expected = peak_signal_noise_ratio(target_lab[..., 1:], pred_lab[..., 1:], data_range=220.0)
    assert metrics.psnr_ab(pred_lab, target_lab) == pytest.approx(expected, rel=1e-9)
    # Lightness differences do not count: ab PSNR only judges colour.
    brighter = target_lab.copy()
    brighter[..., 0] += 10
    assert metrics.psnr_ab(brighter, target_lab) == float("inf")


def test_ssim_matches_scikit_image(photo_pair):
    pred, target = photo_pair
    expected = structural_similarity(target, pred, channel_axis=-1, data_range=255)
    assert metrics.ssim(pred, target) == pytest.approx(expected, abs=1e-9)


def test_ciede2000_is_the_pixel_mean_of_scikit_image(photo_pair):
    pred_lab, target_lab = rgb2lab(photo_pair[0]), rgb2lab(photo_pair[1])
    expected = deltaE_ciede2000(target_lab, pred_lab, channel_axis=-1).mean()
    assert metrics.ciede2000(pred_lab, target_lab) == pytest.approx(expected, rel=1e-12)


def test_colourfulness_on_hand_computed_images():
    assert metrics.colourfulness(_solid((90, 90, 90))) == 0.0
    # Uniform (200, 100, 50): no spread; rg = 100, yb = 150 - 50 = 100 -> 0.3 * sqrt(100^2 + 100^2).
    assert metrics.colourfulness(_solid((200, 100, 50))) == pytest.approx(0.3 * np.sqrt(2) * 100)
    # Half red, half green: rg = +-255 (mean 0, std 255); yb = 127.5 everywhere -> 255 + 0.3 * 127.5.
    split = np.concatenate([_solid((255, 0, 0)), _solid((0, 255, 0))])
    assert metrics.colourfulness(split) == pytest.approx(255 + 0.3 * 127.5)
    assert metrics.colourfulness(split / 255.0) == pytest.approx(255 + 0.3 * 127.5)


def _lab_with_ab_error(errors: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Target: gray L=50; prediction: each row of pixels off by one (da, db)."""
    target = np.zeros((len(errors), 4, 3))
    target[..., 0] = 50
    pred = target.copy()
    pred[..., 1:] = np.array(errors)[:, None, :]
    return pred, target


def test_ab_auc_on_hand_computed_error_curves():
    exact_and_ten = _lab_with_ab_error([(0, 0), (6, 8)])  # half the pixels exact, half 10 away
    # Curve: 0.5 for t = 0..9, 1 for t = 10..150; trapezoid = 9 * 0.5 + 0.75 + 140 = 145.25, over 150.
    assert metrics.ab_auc(*exact_and_ten) == pytest.approx(145.25 / 150)
    assert metrics.ab_auc(*_lab_with_ab_error([(0, 200)])) == 0.0  # beyond every threshold
    assert metrics.ab_auc(*_lab_with_ab_error([(90, 120)])) == pytest.approx(0.5 / 150)  # exactly 150: last point
    assert metrics.ab_auc(*_lab_with_ab_error([(0, 0)])) == 1.0


def test_identical_images_are_perfect_on_every_metric(photo_pair):
    scores = metrics.image_metrics(photo_pair[1], photo_pair[1])
    assert list(scores) == list(metrics.METRIC_NAMES)  # the metric table's order
    assert scores["ab_auc"] == 1.0
    assert scores["ciede2000"] == 0.0
    assert scores["colourfulness_delta"] == 0.0
    assert scores["ssim"] == pytest.approx(1.0)
    assert scores["psnr"] == scores["psnr_ab"] == float("inf")


def test_image_metrics_of_a_gray_prediction(photo_pair):
    target = photo_pair[1]
    gray = np.repeat(target.mean(axis=-1, keepdims=True).round().astype(np.uint8), 3, axis=-1)
    scores = metrics.image_metrics(gray, target)
    assert scores["colourfulness"] == pytest.approx(0.0, abs=1e-9)
    assert scores["colourfulness_delta"] == pytest.approx(metrics.colourfulness(target))
    assert scores["ciede2000"] > 2.3  # a gray astronaut is visibly not the colour photo
    assert 0.0 < scores["ab_auc"] < 1.0
    assert scores["psnr"] == pytest.approx(peak_signal_noise_ratio(target, gray))


def test_image_metrics_rejects_mismatched_shapes(photo_pair):
    with pytest.raises(ValueError, match="same shape"):
        metrics.image_metrics(photo_pair[0][:32], photo_pair[1])


def test_bootstrap_ci_is_deterministic_per_seed_and_brackets_the_mean():
    values = np.random.default_rng(1).normal(10.0, 2.0, size=50)
    first = metrics.bootstrap_mean_ci(values, seed=3)
    assert first == metrics.bootstrap_mean_ci(values, seed=3)
    assert first != metrics.bootstrap_mean_ci(values, seed=4)
    mean, low, high = first
    assert mean == pytest.approx(values.mean())
    assert low < mean < high
    # A 95% interval of a mean is about +-1.96 standard errors.
    normal_width = 2 * 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert high - low == pytest.approx(normal_width, rel=0.2)
    narrow = metrics.bootstrap_mean_ci(values, confidence=0.5)
    assert high - low > narrow[2] - narrow[1]


def test_bootstrap_ci_edge_cases():
    assert metrics.bootstrap_mean_ci([4.0, 4.0, 4.0]) == (4.0, 4.0, 4.0)
    assert metrics.bootstrap_mean_ci([7.5]) == (7.5, 7.5, 7.5)
    mean, low, _ = metrics.bootstrap_mean_ci([20.0, 30.0, float("inf")])
    assert mean == float("inf") and np.isfinite(low)
    with pytest.raises(ValueError, match="at least one"):
        metrics.bootstrap_mean_ci([])
    with pytest.raises(ValueError, match="NaN"):
        metrics.bootstrap_mean_ci([1.0, float("nan")])


# --- LPIPS: the code path on a random trunk (never reported as LPIPS) ---------------------------------


@pytest.fixture(scope="module")
def random_trunk_lpips() -> LPIPS:
    torch.manual_seed(0)
    return LPIPS(AlexNetTrunk(), read_state_dict(lpips_linear_weights_file()))


def test_lpips_code_path_is_zero_for_identical_images_and_symmetric(random_trunk_lpips, photo_pair):
    pred, target = photo_pair
    batch_pred, batch_target = np.stack([pred, target]), np.stack([target, target])
    assert random_trunk_lpips.distance_uint8(batch_target, batch_target) == pytest.approx([0.0, 0.0], abs=1e-7)
    forward = random_trunk_lpips.distance_uint8(batch_pred, batch_target)
    backward = random_trunk_lpips.distance_uint8(batch_target, batch_pred)
    np.testing.assert_allclose(forward, backward, rtol=1e-5)
    assert forward[0] > 0 and forward[1] == pytest.approx(0.0, abs=1e-7)


def test_lpips_requires_real_alexnet_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty hub cache
    with pytest.raises(WeightsUnavailable, match=r"no AlexNet weights .*--lpips_weights"):
        load_lpips()
    wrong = tmp_path / "not-alexnet.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, wrong)
    with pytest.raises(ValueError, match="does not match"):
        load_lpips(wrong)


def test_lpips_loads_a_torchvision_format_alexnet_file(tmp_path, random_trunk_lpips, photo_pair):
    state = {f"features.{k}": v for k, v in random_trunk_lpips.trunk.features.state_dict().items()}
    state["classifier.1.weight"] = torch.zeros(4096, 9216)  # present in torchvision files, unused by LPIPS
    path = tmp_path / "alexnet.pth"
    torch.save(state, path)
    loaded = load_lpips(path)
    pred, target = photo_pair
    np.testing.assert_allclose(loaded.distance_uint8(pred, target), random_trunk_lpips.distance_uint8(pred, target))


# --- FID / KID ----------------------------------------------------------------------------------------


def test_frechet_distance_of_shifted_gaussians():
    features = np.random.default_rng(0).normal(size=(400, 8))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)
    # Same covariance, means 0.5 apart in each of 8 dims: FID = 8 * 0.25.
    assert frechet_distance(features, features + 0.5) == pytest.approx(2.0, rel=1e-6)


def test_kid_is_deterministic_and_near_zero_for_one_distribution():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    same = kernel_inception_distance(a, b, subset_size=100, n_subsets=20)
    assert same == kernel_inception_distance(a, b, subset_size=100, n_subsets=20)
    shifted = kernel_inception_distance(a, b + 1.0, subset_size=100, n_subsets=20)
    assert abs(same[0]) < 3 * same[1] + 1e-3 < shifted[0]


def test_fid_inception_requires_weights_and_loads_the_standard_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    with pytest.raises(WeightsUnavailable, match=r"no Inception weights .*--inception_weights"):
        load_fid_inception()
    torch.manual_seed(0)
    # The published checkpoint has no BatchNorm step counters; strict loading must still accept it.
    state = {k: v for k, v in FIDInceptionV3().state_dict().items() if "num_batches_tracked" not in k}
    path = tmp_path / "pt_inception.pth"
    torch.save(state, path)
    net = load_fid_inception(path)
    features = inception_features(net, np.zeros((2, 32, 32, 3), dtype=np.uint8))
    assert features.shape == (2, 2048) and np.isfinite(features).all()
