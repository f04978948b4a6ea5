"""The compositing augmentation (`--composite_cutouts DIR --composite_probability P`): photographic cut-outs
pasted onto training crops.

    compositor = Compositor.from_folder("data/cutouts", probability=0.5)   # built by python -m corpus.cutouts
    rgb, covered = compositor(rgb, np.random.default_rng([seed, epoch, index, 2]))

With probability P a training crop (RGB in [0, 1], before the Lab conversion) gets 1-2 random cut-outs, each at a
random scale and position, mirrored at random unless its manifest forbids it, alpha-composited over the photo.
Pixels outside the pasted alpha are left exactly as they were. The generator is the caller's, seeded per
(seed, epoch, index) like the crop, so a resumed run composites exactly what an uninterrupted one would.
Validation never composites: only the training dataset gets a compositor.

The corpus has almost no people (15 of 490 photos); the cut-outs add ~60 people and ~370 objects and animals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from corpus.cutout_set import BUILD_HINT, MAX_PASTES, Cutout, CutoutSetError, read_cutout_set

SCALE = (0.3, 0.8)  # the cut-out's longer side as a fraction of the crop's side


class Compositor:
    """Pastes cut-outs onto RGB crops; decodes each cut-out when it is drawn (a few MB in memory, not hundreds)."""

    def __init__(self, cutouts: list[Cutout], *, probability: float) -> None:
        if not cutouts:
            raise CutoutSetError(f"the compositor needs at least one cut-out; {BUILD_HINT}.")
        if not 0 <= probability <= 1:
            raise CutoutSetError(f"--composite_probability must be between 0 and 1, got {probability}.")
        self.cutouts = cutouts
        self.probability = probability

    @classmethod
    def from_folder(cls, folder: str | Path, *, probability: float) -> Compositor:
        return cls(read_cutout_set(folder), probability=probability)

    def __call__(self, rgb: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(composited copy of `rgb` (3, H, W), coverage (H, W): the pasted alpha, 0 where the photo is untouched).

        Every draw comes from `rng`, in a fixed order, so equal generators give equal composites.
        """
        _, height, width = rgb.shape
        covered = torch.zeros(height, width)
        if rng.random() >= self.probability:
            return rgb, covered
        out = rgb.clone()
        for _ in range(int(rng.integers(1, MAX_PASTES + 1))):
            cutout = self.cutouts[int(rng.integers(len(self.cutouts)))]
            side = rng.uniform(*SCALE) * min(height, width)
            flip = cutout.mirror and rng.random() < 0.5
            fx, fy = rng.random(), rng.random()  # position, as fractions of the free room
            with Image.open(cutout.path) as image:
                rgba = image.convert("RGBA")
            scale = side / max(rgba.size)
            size = (max(1, min(width, round(rgba.width * scale))), max(1, min(height, round(rgba.height * scale))))
            rgba = rgba.resize(size, Image.Resampling.BICUBIC)  # premultiplied by Pillow: no dark fringes
            if flip:
                rgba = rgba.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            patch = torch.from_numpy(np.asarray(rgba).copy()).permute(2, 0, 1).float().div_(255.0)
            left, top = round(fx * (width - size[0])), round(fy * (height - size[1]))
            alpha = patch[3:4]
            region = out[:, top : top + size[1], left : left + size[0]]
            # where alpha is 0 this is exactly the photo's value: the photo is touched only under the cut-out
            region.mul_(1 - alpha).add_(alpha * patch[:3])
            view = covered[top : top + size[1], left : left + size[0]]
            torch.maximum(view, alpha[0], out=view)
        return out, covered
