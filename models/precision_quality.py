"""What a precision path does to the colours: CIEDE2000 and ab-AuC to the true photos, computed like evaluation's.

    photos, source = validation_photos(count=8)
    scores = score_network(network, photos, side=256)   # {"ciede2000": ..., "ab_auc": ..., "lab": shown colours}

Photos come from the corpus' validation split (data/corpus/validation, `python -m trainer.corpus build`) when it
exists, else from scikit-image's bundled colour photos (a dependency already), and the source is named in every
report. int8 calibration uses other photos (the corpus' training split, or other scikit-image photos), never the
scored ones; `calibration_photos` is also the loader of `python -m models.export --int8 --calibration FOLDER`. The
metrics are those of `judge.metrics` (`ciede2000`, `ab_auc`; tests check they agree): `models` does not import
`judge`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage.color import deltaE_ciede2000, lab2rgb, rgb2lab

from models.color import AB_SCALE, lightness_from_srgb8, normalize_l
from models.imageio import ImageInputError, open_image

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT / "data" / "corpus"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
CALIBRATION_COUNT = 8
# scikit-image's bundled colour photographs, split so that calibration never sees a scored photo
SKIMAGE_SCORED = ("astronaut", "chelsea", "coffee", "immunohistochemistry")
SKIMAGE_CALIBRATION = ("rocket", "hubble_deep_field", "retina")


def _folder_photos(folder: Path, count: int) -> list[np.ndarray]:
    photos = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES):
        try:
            photos.append(np.asarray(open_image(path).convert("RGB")))
        except ImageInputError:
            continue
        if len(photos) == count:
            break
    return photos


def _skimage_photos(names: tuple[str, ...], count: int) -> list[np.ndarray]:
    import skimage.data

    return [np.asarray(getattr(skimage.data, name)())[..., :3] for name in names[:count]]


def validation_photos(count: int = 8, folder: str | Path | None = None) -> tuple[list[np.ndarray], str]:
    """Up to `count` uint8 RGB photos to score paths on, and a description of where they came from."""
    folder = Path(folder) if folder is not None else CORPUS / "validation"
    if folder.is_dir():
        photos = _folder_photos(folder, count)
        if photos:
            return photos, f"{len(photos)} photos of {folder}"
    photos = _skimage_photos(SKIMAGE_SCORED, count)
    return photos, f"{len(photos)} scikit-image photos ({', '.join(SKIMAGE_SCORED[:count])}; no {folder})"


def calibration_photos(
    side: int, count: int = CALIBRATION_COUNT, folder: str | Path | None = None
) -> list[np.ndarray]:
    """Normalised L (1, 1, side, side) of photos for int8 calibration: the first `count` readable photos of `folder`
    (by name; an empty list where it holds none), or without a folder those of the corpus' training split, else
    scikit-image's calibration photos. Never a photo `validation_photos` scores (unless `folder` holds one)."""
    if folder is not None:
        photos = _folder_photos(Path(folder), count)
    else:
        train = CORPUS / "train"
        photos = (_folder_photos(train, count) if train.is_dir() else []) or _skimage_photos(
            SKIMAGE_CALIBRATION, count
        )
    return [l_norm_of(photo, side).numpy() for photo in photos]


def resized(photo: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(photo).resize((side, side), resample=Image.BICUBIC))


def l_norm_of(photo: np.ndarray, side: int) -> torch.Tensor:
    """(1, 1, side, side) normalised L of a uint8 RGB photo resized to side x side."""
    return normalize_l(lightness_from_srgb8(resized(photo, side)))[None, None].float()


def ab_auc(pred_lab: np.ndarray, target_lab: np.ndarray, max_threshold: int = 150) -> float:
    """judge.metrics.ab_auc: area under the cumulative ab-error curve (Zhang et al. 2016), in [0, 1]."""
    diff = pred_lab[..., 1:].astype(np.float64) - target_lab[..., 1:].astype(np.float64)
    distance = np.sqrt((diff * diff).sum(axis=-1)).ravel()
    first_threshold = np.minimum(np.ceil(distance), max_threshold + 1).astype(np.int64)
    counts = np.bincount(first_threshold, minlength=max_threshold + 2)[: max_threshold + 1]
    return float(np.trapezoid(np.cumsum(counts) / distance.size) / max_threshold)


def shown_lab(l_norm: torch.Tensor, ab_norm: torch.Tensor) -> np.ndarray:
    """(1, 1, H, W) L + (1, 2, H, W) ab (normalised) -> (H, W, 3) CIELAB of the colours shown (clipped to sRGB)."""
    lab = torch.cat([(l_norm.float() + 1) * 50, ab_norm.float() * AB_SCALE], dim=1)[0].permute(1, 2, 0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Conversion from CIE-LAB")  # out-of-gamut colours get clipped
        return rgb2lab(lab2rgb(lab.numpy().astype(np.float64)))


@torch.inference_mode()
def score_network(network: torch.nn.Module, photos: list[np.ndarray], side: int) -> dict[str, object]:
    """Mean CIEDE2000 and ab-AuC of `network`'s colours to the photos (each at side x side, one at a time), with the
    shown CIELAB images (key "lab") for comparing paths with each other."""
    ciede, auc, shown = [], [], []
    for photo in photos:
        truth = rgb2lab(resized(photo, side) / 255.0)
        l_norm = l_norm_of(photo, side)
        lab = shown_lab(l_norm, network(l_norm).float())
        ciede.append(float(np.mean(deltaE_ciede2000(truth, lab, channel_axis=-1))))
        auc.append(ab_auc(lab, truth))
        shown.append(lab)
    return {"ciede2000": float(np.mean(ciede)), "ab_auc": float(np.mean(auc)), "lab": shown}


def colour_distance(first: list[np.ndarray], second: list[np.ndarray]) -> float:
    """Mean CIEDE2000 between two paths' shown colours of the same photos (0 = the same picture)."""
    return float(
        np.mean([np.mean(deltaE_ciede2000(a, b, channel_axis=-1)) for a, b in zip(first, second, strict=True)])
    )
