"""Model cards (README.md with Hub metadata) for saved colorizers.

The network supplies architecture and size; the trainer adds `card_data` (dataset, steps, command,
validation metrics, sample grid file), so a card read on the Hub says how the weights were made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData


def hub_dataset_ids(dataset: object) -> list[str] | None:
    """The card's `datasets:` entry: only a Hub id (user/name that is not a local folder), never a local path."""
    name = str(dataset or "")
    parts = name.split("/")
    if len(parts) == 2 and all(parts) and not Path(name).exists() and not name.startswith((".", "~")):
        return [name]
    return None


def _metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    """`{"model": {"psnr": ..}, "grayscale baseline": {...}}` -> a markdown table."""
    columns = sorted({name for row in metrics.values() for name in row})
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row_name, row in metrics.items():
        cells = [f"{row[c]:.4g}" if c in row else "" for c in columns]
        lines.append(f"| {row_name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_model_card(model: Any) -> ModelCard:
    """Card for a `ColorizationNet` (or anything with `card_data`, `description`, `num_parameters()`)."""
    info: dict[str, Any] = dict(getattr(model, "card_data", {}) or {})
    architecture = type(model).__name__
    parameters = model.num_parameters()
    card_data = ModelCardData(
        library_name="colorlab",
        license=info.get("license", "apache-2.0"),
        pipeline_tag="image-to-image",
        tags=["colorlab", "image-colorization", "image-to-image", architecture],
        datasets=hub_dataset_ids(info.get("dataset")),
    )
    sections = [
        f"# {info.get('title', info.get('variant', architecture))}",
        f"A ColorLab colorizer: {model.description}. It predicts the CIELAB a/b channels from the L channel; "
        "the ColorLab pipeline runs it at a working size and upsamples the colour guided by the full-resolution "
        "L, so outputs keep the input's size and lightness.",
        "## Architecture\n"
        f"- class: `{architecture}`"
        + (f" (registry variant `{info['variant']}`)" if info.get("variant") else "")
        + f"\n- parameters: {parameters:,} ({parameters / 1e6:.2f} M)"
        + f"\n- input: L / 50 - 1, shape (B, 1, H, W), H and W multiples of {model.size_multiple}"
        + "\n- output: ab / 110 through tanh, shape (B, 2, H, W)",
    ]
    training = {
        k: info[k] for k in ("dataset", "steps", "images_seen", "resolution", "losses", "command") if k in info
    }
    if training:
        lines = [
            f"- {key.replace('_', ' ')}: `{value}`" if key == "command" else f"- {key.replace('_', ' ')}: {value}"
            for key, value in training.items()
        ]
        sections.append("## Training\n" + "\n".join(lines))
    else:
        sections.append(
            "## Training\nThese weights have not been trained by the ColorLab trainer (untrained or external)."
        )
    if info.get("metrics"):
        sections.append("## Validation metrics\n" + _metrics_table(info["metrics"]))
    if info.get("sample_grid"):
        sections.append(f"## Samples\ngray input | prediction | ground truth\n\n![samples]({info['sample_grid']})")
    if info.get("notes"):
        sections.append("## Notes\n" + str(info["notes"]))
    sections.append(
        "## Use\n```python\nfrom models.hub import load_colorizer\n\n"
        'colorizer = load_colorizer("PATH_OR_REPO_ID")\ncolor = colorizer.colorize(PIL.Image.open("photo.jpg"))\n```'
    )
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")
