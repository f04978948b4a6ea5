"""Model cards (README.md with Hub metadata) for saved colorizers.

The network supplies architecture and size; the trainer adds `card_data` (dataset, steps, command,
validation metrics, sample grid file, widget example), so a card read on the Hub says how the weights were made. The
validation metrics also go into the front matter as `model-index` results, which the Hub shows as an
evaluation table; `datasets:` and the results' dataset type name a Hub dataset only when the training data
was one, never a local path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from models.hint_card import hint_curve_section, hints_usage_section
from models.hub_files import looks_like_repo_id
from models.metric_table import HINTED_PREFIX, METRICS, VALIDATION_HINTS

# Readable names of the metrics on the card, from the one metric table (direction included where lower is better).
METRIC_LABELS = {name: metric.hub_name for name, metric in METRICS.items()}


def metric_label(metric: str, hint_loss: str | None = None) -> str:
    """The card's name for a validation metric, hinted ones included (their base metric's name, then the hints and
    what was scored: the output as served, after the hint propagation, when the trainer recorded `hint_loss: served`;
    the network alone otherwise, as models trained before that setting existed were validated)."""
    if metric.startswith(HINTED_PREFIX):
        base = metric.removeprefix(HINTED_PREFIX)
        scored = "as served, with the hint propagation" if hint_loss == "served" else "network alone"
        return f"{METRIC_LABELS.get(base, base)}, with {VALIDATION_HINTS} simulated colour points ({scored})"
    return METRIC_LABELS.get(metric, metric)


# The repository's own local folders (gitignored, absent from a fresh clone): a path under one of them is local
# even where it no longer exists and has the user/name shape of a Hub id ("data/corpus").
LOCAL_ROOTS = ("data", "outputs", "weights", "runs", "tests")
# Where `python -m corpus.photos build` puts the open photo corpus by default.
CORPUS_FOLDER = "data/corpus"
CORPUS_NAME = "ColorLab open photo corpus"  # the title of the dataset card the builder writes
VALIDATION_TASK = "image-to-image"


def is_hub_id(source: object) -> bool:
    """Whether `source` (a dataset or base model) names a Hub repo (user/name that is not a local folder)."""
    name = str(source or "")
    return looks_like_repo_id(name) and name.split("/")[0] not in LOCAL_ROOTS and not Path(name).exists()


def hub_dataset_ids(dataset: object) -> list[str] | None:
    """The card's `datasets:` entry: only a Hub id (user/name that is not a local folder), never a local path."""
    return [str(dataset)] if is_hub_id(dataset) else None


def describe_dataset(dataset: object) -> str:
    """A name for the training data that never shows a local path: the Hub id, a local dataset's card title,
    the corpus' name, or the local folder's last component."""
    name = str(dataset or "").strip()
    if not name:
        return "unrecorded dataset"
    if is_hub_id(name):
        return name
    path = Path(name)
    if path.as_posix().rstrip("/") == CORPUS_FOLDER:
        return CORPUS_NAME
    card = path / "README.md"
    if card.is_file():  # a local dataset with its own card (the corpus builder writes one): use its title
        title = re.search(r"^# (.+)$", card.read_text(encoding="utf-8", errors="replace"), re.MULTILINE)
        if title:
            return title.group(1).strip()
    return f"local dataset '{path.name or name}'"


def _dataset_type(dataset: object) -> str:
    """model-index `dataset.type`: the Hub id, else a slug of the description (never a path)."""
    if is_hub_id(dataset):
        return str(dataset)
    slug = re.sub(r"[^a-z0-9]+", "-", describe_dataset(dataset).lower()).strip("-")
    return slug or "local-dataset"


def model_row(metrics: dict[str, dict[str, float]]) -> tuple[str, dict[str, float]] | None:
    """The model's own row of the trainer's metrics (`{"model (step N)": {...}, "grayscale baseline": {...}}`)."""
    rows = [(name, row) for name, row in metrics.items() if "baseline" not in name and isinstance(row, dict)]
    return rows[0] if rows else None


def eval_results(info: dict[str, Any]) -> list[EvalResult] | None:
    """`model-index` results: one per validation metric of the model's own row (the baseline stays in the table)."""
    row = model_row(info.get("metrics") or {})
    if row is None:
        return None
    _, values = row
    dataset = info.get("dataset")
    split = str(info.get("val_split") or "validation")
    results = [
        EvalResult(
            task_type=VALIDATION_TASK,
            task_name="Image colorization",
            dataset_type=_dataset_type(dataset),
            dataset_name=describe_dataset(dataset),
            dataset_split=split,
            metric_type=metric,
            metric_name=metric_label(metric, info.get("hint_loss")),
            metric_value=round(float(value), 4),
        )
        for metric, value in sorted(values.items())
        if isinstance(value, int | float) and value == value and abs(value) != float("inf")  # YAML has no NaN/inf
    ]
    return results or None


def widget_examples(info: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The card's `widget:` examples (input `src`, `output.url`, `example_title`: the Hub's image-to-image widget
    and gallery) from the trainer's `widget_example` entry; its files are relative to the model folder."""
    entry = info.get("widget_example")
    if not isinstance(entry, dict) or not entry.get("src"):
        return None
    example: dict[str, Any] = {"src": str(entry["src"]), "example_title": str(entry.get("title") or "Example")}
    if entry.get("output"):
        example["output"] = {"url": str(entry["output"])}
    return [example]


def _metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    """`{"model": {"psnr": ..}, "grayscale baseline": {...}}` -> a markdown table."""
    columns = sorted({name for row in metrics.values() for name in row})
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    # JSON configs store the rows sorted by name; the model's rows come first, the baseline it must beat last.
    for row_name, row in sorted(metrics.items(), key=lambda item: "baseline" in item[0]):
        cells = [f"{row[c]:.4g}" if c in row else "" for c in columns]
        lines.append(f"| {row_name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


_TRAINING_KEYS = ("dataset", "augmentation", "steps", "images_seen", "resolution", "losses", "command")


def training_sections(info: dict[str, Any], *, what: str, samples_caption: str) -> list[str]:
    """The card's Training, Validation metrics, Samples and Notes sections from the trainer's `card_data`."""
    training = {k: info[k] for k in _TRAINING_KEYS if k in info}
    if training:
        lines = [f"- {k.replace('_', ' ')}: " + (f"`{v}`" if k == "command" else str(v)) for k, v in training.items()]
        sections = ["## Training\n" + "\n".join(lines)]
    else:
        sections = [f"## Training\n{what} not been trained by the ColorLab trainer (untrained or external)."]
    if info.get("metrics"):
        split = info.get("val_split") or "validation"
        sections.append(
            f"## Validation metrics\nOn the {split} split, whole photos resized to the training resolution, against "
            "leaving the photo gray (the baseline a colorizer has to beat):\n\n" + _metrics_table(info["metrics"])
        )
    if info.get("sweep"):
        sections.append(_sweep_section(info["sweep"]))
    if info.get("hint_curve"):
        sections.append(hint_curve_section(info["hint_curve"]))
    if info.get("sample_grid"):
        sections.append(f"## Samples\n{samples_caption}\n\n![samples]({info['sample_grid']})")
    if info.get("notes"):
        sections.append("## Notes\n" + str(info["notes"]))
    return sections


def _description(model: Any) -> str:
    """The class's description, said right for a U-Net built with a colour-class head instead of regression."""
    if not getattr(model, "ab_classes", False):
        return model.description
    described = model.description.replace("regressor (Ronneberger et al. 2015)", "(Ronneberger et al. 2015)")
    return described.split(", trained")[0] + ", predicting colour classes (Zhang et al. 2016)"


def _sweep_section(sweep: dict[str, Any]) -> str:
    """`{"command": ..., "sizes": {"192": {"ciede2000": .., "blotches": ..}, ...}, "gray_ciede2000": ..}` -> markdown:
    the model at every working size (from `judge.evaluate --sweep`), so users see how far it can be pushed."""
    gray = sweep.get("gray_ciede2000")
    gray_text = f"gray: CIEDE2000 {gray:.2f}" if isinstance(gray, (int, float)) else "gray not scored"
    lines = [
        "## Working-size sweep",
        f"`{sweep.get('command', 'python -m judge.evaluate --sweep')}` ({gray_text}).",
        "",
        "| working size | CIEDE2000 | ab AuC | \\|Δ colourfulness\\| | blotches (%) |",
        "|---|---|---|---|---|",
    ]
    for size, row in sweep.get("sizes", {}).items():
        lines.append(
            f"| {size} | {row['ciede2000']:.2f} | {row['ab_auc']:.4f} | {row['colourfulness_delta']:.1f} | "
            f"{row['blotches']:.3f} |"
        )
    return "\n".join(lines)


GAN_FAILURE_MODES = (
    "Typical failure modes of small colorizers like this one: washed-out or sepia casts (regression losses average "
    "the possible colours), and with a GAN, bolder colour that can form blotches on smooth areas (the `blotches` "
    "metric counts them)."
)


def limitations_section(info: dict[str, Any], *, trained: bool, failure_modes: str = GAN_FAILURE_MODES) -> str:
    """What the colours can and cannot be trusted for, plus anything the trainer recorded."""
    lines = [
        "- The colours are a plausible guess learned from photographs, not a record of the real scene: clothing, "
        "cars, painted walls and anything else whose colour the gray values do not imply can come out wrong, "
        "and objects the training photos rarely showed stay near gray.",
        f"- {failure_modes}",
        "- The validation metrics come from a small held-out split at the training resolution; they rank "
        "colorizers on that data and say little about other kinds of photos. Human ratings (the ColorLab arena) "
        "are the better judge of what looks right.",
        "- The training photos decide what the model knows: their subjects, places and skin tones are not a "
        "balanced sample of the world's photographs.",
    ]
    if not trained:
        lines.insert(0, "- These weights were not trained by the ColorLab trainer; nothing above was measured.")
    if info.get("limitations"):
        lines.append(f"- {info['limitations']}")
    return "## Limitations\n" + "\n".join(lines)


def usage_section(call: str) -> str:
    """How to run the model once `pip install colorlab` (or a clone of the repository) provides `models`."""
    return (
        "## Use\nWith ColorLab installed (`pip install .` in a clone of the ColorLab repository; the package "
        "provides the `models` module and the `colorlab-colorize` command):\n\n"
        "```python\nfrom PIL import Image\n\nfrom models.hub import load_colorizer\n\n"
        'colorizer = load_colorizer("PATH_OR_REPO_ID")  # a local folder, or a Hub id such as user/name\n'
        f"{call}\n```\n\n"
        "From the command line: `colorlab-colorize --model PATH_OR_REPO_ID photo.jpg --out colorized/`."
    )


def onnx_section(size_multiple: int, working_size: int) -> str:
    """How to export the network to ONNX (models/export.py) and run it with onnxruntime, without torch."""
    return (
        "## Run with ONNX Runtime\n"
        "Export the network to ONNX (free batch, height and width; `--int8` adds int8 convolutions) and run it with "
        "onnxruntime, without torch:\n\n"
        "```bash\ncolorlab-export PATH_OR_REPO_ID --format onnx --out colorizer.onnx\n```\n\n"
        "```python\nimport numpy as np\nimport onnxruntime as ort\nfrom PIL import Image\n"
        "from skimage import color\n\n"
        'session = ort.InferenceSession("colorizer.onnx", providers=["CPUExecutionProvider"])\n'
        f'photo = Image.open("photo.jpg").convert("RGB").resize(({working_size}, {working_size}))\n'
        "lightness = color.rgb2lab(np.asarray(photo))[..., :1]\n"
        "l_norm = (lightness / 50 - 1).transpose(2, 0, 1)[None].astype(np.float32)  # (batch, 1, height, width)\n"
        'ab = session.run(["ab_norm"], {"l_norm": l_norm})[0][0].transpose(1, 2, 0) * 110\n'
        "rgb = color.lab2rgb(np.concatenate([lightness, ab], axis=-1))  # floats in [0, 1]\n```\n\n"
        f"Height and width must be multiples of {size_multiple}. The file holds the network only; ColorLab's pipeline "
        "adds the full-resolution output (colour upsampled guided by the photo's own lightness, fitted into sRGB at "
        "constant L). Diffusion colorizers cannot be exported this way."
    )


def render_model_card(model: Any) -> ModelCard:
    """Card for a `ColorizationNet` (or anything with `card_data`, `description`, `num_parameters()`)."""
    info: dict[str, Any] = dict(getattr(model, "card_data", {}) or {})
    architecture = type(model).__name__
    parameters = model.num_parameters()
    title = str(info.get("title", info.get("variant", architecture)))
    card_data = ModelCardData(
        model_name=title,
        library_name="colorlab",
        license=info.get("license", "apache-2.0"),
        pipeline_tag="image-to-image",
        tags=["colorlab", "image-colorization", "image-to-image", architecture],
        datasets=hub_dataset_ids(info.get("dataset")),
        eval_results=eval_results(info),
        widget=widget_examples(info),
    )
    sections = [
        f"# {title}",
        f"A ColorLab colorizer: {_description(model)}. It predicts the CIELAB a/b channels from the L channel; "
        "the ColorLab pipeline runs it at a working size and upsamples the colour guided by the full-resolution "
        "L, so outputs keep the input's size and lightness.",
        "## Architecture\n"
        f"- class: `{architecture}`"
        + (f" (registry variant `{info['variant']}`)" if info.get("variant") else "")
        + f"\n- parameters: {parameters:,} ({parameters / 1e6:.2f} M)"
        + (
            "\n- input: L / 50 - 1 and a colour-hint map (hinted a / 110, b / 110 and a mask that is 1 at the "
            f"hints; all zero without hints), shape (B, 4, H, W), H and W multiples of {model.size_multiple}"
            if getattr(model, "takes_hints", False)
            else f"\n- input: L / 50 - 1, shape (B, 1, H, W), H and W multiples of {model.size_multiple}"
        )
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
    sections.append(limitations_section(info, trained=bool(info.get("steps"))))
    sections.append(usage_section('color = colorizer.colorize(Image.open("photo.jpg"))  # full resolution'))
    if getattr(model, "takes_hints", False):
        sections.append(hints_usage_section())  # and no ONNX section: colorlab-export refuses hint models
    else:
        working_size = int(getattr(model, "native_working_size", None) or 256)
        sections.append(onnx_section(model.size_multiple, working_size // model.size_multiple * model.size_multiple))
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")
