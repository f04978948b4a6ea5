"""Validation during training: colour metrics vs the grayscale baseline, sample grids, loss curves.

The validation images are decoded once (whole image squashed to the training resolution, as the
inference pipeline does) and kept in memory; each validation pass only runs the generator.
Metrics come from `judge.metrics` so training and `python -m judge.evaluate` agree; which direction
is better (early stopping, the best checkpoint) comes from the metric table, `models.metric_table`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from judge.metrics import image_metrics
from models.color import model_space_to_rgb

# normalised L (B,1,H,W) -> normalised ab (B,2,H,W), or (B,k,2,H,W): k sampled colourings per image (diffusion)
PredictFn = Callable[[torch.Tensor], torch.Tensor]


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> (B, H, W, 3) uint8."""
    return (rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _mean_metrics(predictions: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    rows = [image_metrics(p, t) for p, t in zip(predictions, targets, strict=True)]
    return {name: float(np.mean([row[name] for row in rows])) for name in rows[0]}


class Validator:
    """Holds the validation tensors; `run(predict)` returns mean metrics and writes a sample grid."""

    def __init__(
        self,
        samples: list[dict[str, torch.Tensor]],
        *,
        out_dir: Path,
        batch_size: int = 8,
        skipped_corrupt: int = 0,
        skipped_grayscale: int = 0,
    ) -> None:
        if not samples:
            raise ValueError("The validation split is empty; use --val_fraction > 0 or a non-empty --val_split.")
        # Bad files met while collecting the samples, reported next to the training split's.
        self.skipped_corrupt = skipped_corrupt
        self.skipped_grayscale = skipped_grayscale
        self.l_norm = torch.stack([s["L"] for s in samples])
        self.ab_norm = torch.stack([s["ab"] for s in samples])
        self.batch_size = batch_size
        self.out_dir = out_dir
        self.targets = to_uint8(model_space_to_rgb(self.l_norm, self.ab_norm))
        self.grays = to_uint8(model_space_to_rgb(self.l_norm, torch.zeros_like(self.ab_norm)))
        self.baseline = _mean_metrics(self.grays, self.targets)
        self.last_grid: Image.Image | None = None  # the latest sample grid, which the trainers send to the trackers

    def __len__(self) -> int:
        return len(self.l_norm)

    @torch.no_grad()
    def predict(self, predict: PredictFn, *, hint_maps: torch.Tensor | None = None) -> np.ndarray:
        """(N, H, W, 3) uint8 predictions, or (N, k, H, W, 3) when `predict` samples k colourings per image.

        With `hint_maps` (N, HINT_CHANNELS, H, W), `predict(l_batch, hint_batch)` is called instead."""
        outputs = []
        for start in range(0, len(self.l_norm), self.batch_size):
            l_batch = self.l_norm[start : start + self.batch_size]
            if hint_maps is None:
                ab = predict(l_batch).float().cpu()
            else:
                ab = predict(l_batch, hint_maps[start : start + self.batch_size]).float().cpu()
            if ab.dim() == 5:
                count, samples = ab.shape[:2]
                l_repeated = l_batch.repeat_interleave(samples, dim=0)
                rgb = to_uint8(model_space_to_rgb(l_repeated, ab.flatten(0, 1)))
                outputs.append(rgb.reshape(count, samples, *rgb.shape[1:]))
            else:
                outputs.append(to_uint8(model_space_to_rgb(l_batch, ab)))
        return np.concatenate(outputs)

    def run(self, predict: PredictFn, *, step: int, grid_rows: int = 6) -> dict[str, float]:
        """Mean metrics (over every sampled colouring, for samplers) and a grid with one column per sample."""
        predictions = self.predict(predict)
        if predictions.ndim == 5:
            samples = predictions.shape[1]
            metrics = _mean_metrics(predictions.reshape(-1, *predictions.shape[2:]), self.targets.repeat(samples, 0))
            columns = [predictions[:grid_rows, k] for k in range(samples)]
        else:
            metrics = _mean_metrics(predictions, self.targets)
            columns = [predictions[:grid_rows]]
        self.out_dir.mkdir(parents=True, exist_ok=True)
        grid = sample_grid(self.grays[:grid_rows], columns, self.targets[:grid_rows])
        grid.save(self.out_dir / f"samples-{step:07d}.png")
        grid.save(self.out_dir / "samples.png")
        self.last_grid = grid
        return metrics

    def metrics_with_hints(self, predict: Callable[..., torch.Tensor], hint_maps: torch.Tensor) -> dict[str, float]:
        """Mean metrics of a hint model given `hint_maps` (one per validation image; no grid is written)."""
        return _mean_metrics(self.predict(predict, hint_maps=hint_maps), self.targets)


def sample_grid(
    grays: np.ndarray, predictions: np.ndarray | list[np.ndarray], targets: np.ndarray, *, label_height: int = 18
) -> Image.Image:
    """Rows of gray input | prediction | ground truth, with a header row naming the columns.

    `predictions` may be a list of arrays: one column per sampled colouring ("sample 1", "sample 2", ...).
    """
    columns = predictions if isinstance(predictions, list) else [predictions]
    rows, height, width = columns[0].shape[:3]
    titles = ["prediction"] if len(columns) == 1 else [f"sample {k + 1}" for k in range(len(columns))]
    canvas = Image.new("RGB", ((len(columns) + 2) * width, rows * height + label_height), "white")
    draw = ImageDraw.Draw(canvas)
    for column, title in enumerate(("gray input", *titles, "ground truth")):
        draw.text((column * width + 4, 3), title, fill="black")
    for row in range(rows):
        for column, images in enumerate((grays, *columns, targets)):
            canvas.paste(Image.fromarray(images[row]), (column * width, label_height + row * height))
    return canvas


def validation_metrics(history: list[dict[str, float]], step: int) -> dict[str, float] | None:
    """The validation metrics logged at `step` (names without the "val_" prefix), or None if none ran then."""
    for record in reversed(history):
        if record.get("step") == step and any(key.startswith("val_") for key in record):
            return {key.removeprefix("val_"): value for key, value in record.items() if key.startswith("val_")}
    return None


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    """Loss curves (and validation metrics) against step, one panel per quantity."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for row in history for k in row if k != "step"})
    columns = min(3, len(keys))
    rows = (len(keys) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3 * rows), squeeze=False)
    for axis, key in zip(axes.flat, keys, strict=False):
        points = [(row["step"], row[key]) for row in history if key in row]
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 50 else None)
        axis.set_title(key)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(keys) :]:
        axis.axis("off")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
