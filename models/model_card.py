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
    from models.hub import looks_like_repo_id  # lazy: cards are rendered rarely, hub pulls in the pipeline

    name = str(dataset or "")
    return [name] if looks_like_repo_id(name) and not Path(name).exists() else None


def _metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    """`{"model": {"psnr": ..}, "grayscale baseline": {...}}` -> a markdown table."""
    columns = sorted({name for row in metrics.values() for name in row})
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    # JSON configs store the rows sorted by name; the model's rows come first, the baseline it must beat last.
    for row_name, row in sorted(metrics.items(), key=lambda item: "baseline" in item[0]):
        cells = [f"{row[c]:.4g}" if c in row else "" for c in columns]
        lines.append(f"| {row_name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


_TRAINING_KEYS = ("dataset", "steps", "images_seen", "resolution", "losses", "command")


def training_sections(info: dict[str, Any], *, what: str, samples_caption: str) -> list[str]:
    """The card's Training, Validation metrics, Samples and Notes sections from the trainer's `card_data`."""
    training = {k: info[k] for k in _TRAINING_KEYS if k in info}
    if training:
        lines = [f"- {k.replace('_', ' ')}: " + (f"`{v}`" if k == "command" else str(v)) for k, v in training.items()]
        sections = ["## Training\n" + "\n".join(lines)]
    else:
        sections = [f"## Training\n{what} not been trained by the ColorLab trainer (untrained or external)."]
    if info.get("metrics"):
        sections.append("## Validation metrics\n" + _metrics_table(info["metrics"]))
    if info.get("sample_grid"):
        sections.append(f"## Samples\n{samples_caption}\n\n![samples]({info['sample_grid']})")
    if info.get("notes"):
        sections.append("## Notes\n" + str(info["notes"]))
    return sections


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
        + (
            "\n- output: 529 colour-bin logits at 1/4 resolution, decoded as the annealed mean "
            f"(temperature {model.temperature}) to ab / 110, shape (B, 2, H, W)"
            if getattr(model, "ab_classes", False)
            else "\n- output: ab / 110 through tanh, shape (B, 2, H, W)"
        )
        + (
            f"\n- native working size: {model.native_working_size} px (the app, CLI and evaluation use it by default)"
            if getattr(model, "native_working_size", None)
            else ""
        ),
    ]
    sections += training_sections(
        info, what="These weights have", samples_caption="gray input | prediction | ground truth"
    )
    sections.append(
        "## Use\n```python\nfrom models.hub import load_colorizer\n\n"
        'colorizer = load_colorizer("PATH_OR_REPO_ID")\ncolor = colorizer.colorize(PIL.Image.open("photo.jpg"))\n```'
    )
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")
