"""Evaluation report: summary statistics and the files `python -m judge.evaluate` writes into --out.

    report = build_report(raw, images, names, unavailable, config, votes=votes)   # the report.json content
    write_report(report, raw, images, Path("reports/eval"))

Files: report.md (table, best value per column in bold, 95% bootstrap CIs), report.json (everything, JSON-safe:
an infinite PSNR is written as the string "inf"), per_image.csv, grid.png (input | each model | ground truth
for a few images spread evenly over the set), and charts/METRIC.png (bars with CI whiskers); with --hints also the
hint curve's table and charts/hint_curve.png (`judge.hint_curve`).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from judge.fid import frechet_distance, kernel_inception_distance
from judge.hint_curve import hint_curve_chart, hint_curve_lines
from judge.metrics import bootstrap_mean_ci
from judge.sweep import sweep_lines
from models.metric_table import METRICS, format_number

# Column labels, decimals, directions and the order of the columns: the metric table (models.metric_table).
GROUND_TRUTH = "ground truth"


def _per_image_metrics(per_image: list[dict]) -> list[str]:
    return [m for m, metric in METRICS.items() if metric.per_image and per_image and m in per_image[0]]


def summarize(per_image: list[dict], names: list[str], *, n_boot: int, seed: int) -> dict[str, dict[str, dict]]:
    """model -> metric -> {"mean", "low", "high"}: mean over images with a percentile-bootstrap 95% CI."""
    summary: dict[str, dict[str, dict]] = {}
    for name in names:
        rows = [row for row in per_image if row["model"] == name]
        summary[name] = {}
        for metric in _per_image_metrics(per_image):
            mean, low, high = bootstrap_mean_ci([row[metric] for row in rows], n_boot=n_boot, seed=seed)
            summary[name][metric] = {"mean": mean, "low": low, "high": high}
    return summary


def add_set_metrics(summary: dict, features: dict[str, np.ndarray], names: list[str], *, seed: int) -> None:
    """FID and KID of each model's outputs against the ground-truth images (set-level: no per-image CI)."""
    if GROUND_TRUTH not in features:
        return
    real = features[GROUND_TRUTH]
    if len(real) < 2:
        return  # a covariance needs two images; build_report records why
    for name in names:
        kid_mean, kid_std = kernel_inception_distance(real, features[name], seed=seed)
        summary[name]["fid"] = {"mean": frechet_distance(real, features[name]), "low": None, "high": None}
        summary[name]["kid"] = {
            "mean": kid_mean,
            "low": kid_mean - kid_std,
            "high": kid_mean + kid_std,
            "std": kid_std,
        }


def build_report(
    raw: dict,
    images: Any,
    names: list[str],
    unavailable: dict[str, str],
    config: dict[str, Any],
    *,
    votes: list[Any] | None = None,
) -> dict[str, Any]:
    """Everything report.json holds; the other files are rendered from it and `raw`."""
    n_boot, seed = int(config.get("n_boot", 1000)), int(config.get("seed", 0))
    summary = summarize(raw["per_image"], names, n_boot=n_boot, seed=seed)
    add_set_metrics(summary, raw["features"], names, seed=seed)
    unavailable = dict(unavailable)
    if raw["features"] and "fid" not in summary[names[0]]:
        unavailable["fid"] = unavailable["kid"] = "unavailable: FID and KID need at least 2 images"
    report: dict[str, Any] = {
        "config": config,
        "n_images": len(images.rgb),
        "skipped_images": list(images.skipped),
        "models": names,
        "metrics": [m for m in METRICS if m in summary[names[0]]],
        "summary": summary,
        "unavailable": unavailable,
        "grid_images": [images.ids[i] for i in raw["grid"]["indices"]],
        "seconds": raw["seconds"],
    }
    if votes is not None:
        from judge.human import human_section  # only with --ratings: it brings in the app's vote statistics

        report["human"] = human_section(votes, names, summary, n_boot=n_boot, seed=seed)
    return report


# --- rendering ----------------------------------------------------------------------------------------------------
_fmt = format_number  # every number of a report, CIs and human ratings included, is shown the table's way


def _best(values: list[float], higher: bool | None) -> float | None:
    finite_or_inf = [v for v in values if not math.isnan(v)]
    if higher is None or not finite_or_inf:
        return None
    return max(finite_or_inf) if higher else min(finite_or_inf)


def _label(metric: str) -> str:
    """The column label with its direction arrow."""
    return METRICS[metric].label + METRICS[metric].arrow


def metrics_table(report: dict) -> list[str]:
    names, summary, metrics = report["models"], report["summary"], report["metrics"]
    lines = [
        "| model | " + " | ".join(_label(m) for m in metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    best = {m: _best([summary[n][m]["mean"] for n in names], METRICS[m].higher_is_better) for m in metrics}
    for name in names:
        cells = []
        for metric in metrics:
            stat, decimals = summary[name][metric], METRICS[metric].decimals
            text = _fmt(stat["mean"], decimals)
            if stat["mean"] == best[metric]:
                text = f"**{text}**"
            if "std" in stat:
                text += f" ± {_fmt(stat['std'], decimals)}"
            elif stat.get("low") is not None:
                text += f" [{_fmt(stat['low'], decimals)}, {_fmt(stat['high'], decimals)}]"
            cells.append(text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _ci_text(ci: list[float | None], decimals: int) -> str:
    return "" if ci[0] is None else f" [{_fmt(ci[0], decimals)}, {_fmt(ci[1], decimals)}]"


def human_lines(human: dict) -> list[str]:
    lines = [
        "## Human ratings",
        "",
        f"{human['n_votes']} arena votes. Bradley-Terry score on the Elo scale (1000 = average of all rated models) "
        "with a 95% bootstrap CI; MOS = mean 1-5 rating with a t interval.",
        "",
        "| model | BT score | votes | win rate | MOS | ratings |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in human["models"].items():
        if row is None:
            lines.append(f"| {name} | no votes | 0 | | | |")
            continue
        lines.append(
            f"| {name} | {_fmt(row['bt_score'], 0)}{_ci_text(row['bt_ci'], 0)} | {row['votes']} | "
            f"{_fmt(row['win_rate'], 2)} | {_fmt(row['mos'], 2)}{_ci_text(row['mos_ci'], 2)} | {row['ratings']} |"
        )
    if human["unmatched_in_votes"]:
        lines += ["", f"Rated but not evaluated here: {', '.join(human['unmatched_in_votes'])}."]
    lines += ["", "### Do the metrics agree with people?", ""]
    if "correlations_note" in human:
        return [*lines, f"Not computed: {human['correlations_note']}."]
    lines += [
        "Rank correlation of each metric's mean with the BT score across the rated models (p-values in parentheses). "
        "*Agreement* flips the sign of ↓ metrics, so +1 means the metric orders the models exactly as people do "
        "and -1 exactly the other way round.",
        "",
        "| metric | Spearman ρ (p) | Kendall τ (p) | agreement (ρ) | models |",
        "|---|---|---|---|---|",
    ]
    for metric, corr in human["correlations"].items():
        label = _label(metric)
        if "note" in corr:
            lines.append(f"| {label} | {corr['note']} | | | |")
            continue
        direction = {True: 1.0, False: -1.0}.get(corr["higher_is_better"])
        agreement = None if direction is None or corr["spearman"] is None else direction * corr["spearman"]
        lines.append(
            f"| {label} | {_fmt(corr['spearman'], 2)} ({_fmt(corr['spearman_p'], 3)}) | "
            f"{_fmt(corr['kendall'], 2)} ({_fmt(corr['kendall_p'], 3)}) | "
            f"{'—' if agreement is None else f'{agreement:+.2f}'} | {corr['n_models']} |"
        )
    return lines


def _working_sizes_text(config: dict) -> str:
    sizes = config.get("working_sizes")
    if not sizes:
        return f"{config.get('working_size') or 'their native'} px"
    if config.get("working_size"):
        return f"{config['working_size']} px"
    return "their native working size (" + ", ".join(f"{n} {s} px" for n, s in sizes.items()) + ")"


def _size_average_text(config: dict) -> str:
    size = config.get("size_average")
    return f", size-averaged with {size} px" if size else ""


def render_markdown(report: dict) -> str:
    config = report["config"]
    lines = [
        "# ColorLab evaluation",
        "",
        f"Dataset `{config.get('dataset')}` (split `{config.get('split')}`): {report['n_images']} images, "
        f"{'whole photos, long side' if config.get('fit') == 'whole' else 'center-cropped to'} "
        f"{config.get('image_size')} px; networks run at {_working_sizes_text(config)}"
        f"{', flip-averaged' if config.get('flip_average') else ''}"
        f"{_size_average_text(config)}"
        f"{', aspect kept' if config.get('keep_aspect') else ''}. "
        f"Cells: mean over images [95% bootstrap CI, {config.get('n_boot')} resamples, seed {config.get('seed')}]; "
        "best value per column in **bold**.",
        "",
        *metrics_table(report),
        "",
        "↑ higher is better, ↓ lower is better. Colourfulness (Hasler & Süsstrunk 2003) has no better direction; "
        "ΔColourfulness is its absolute difference from the ground truth's. PSNR ab uses a 220 peak (the ab "
        "range). ab AuC: Zhang et al. 2016, thresholds 0-150.",
    ]
    for metric, source in config.get("weights", {}).items():
        verdict = "matches" if source["matches_published"] else "does NOT match"
        lines.append(
            f"{METRICS[metric].label} weights: `{Path(source['file']).name}`, sha256 {source['sha256'][:12]}… "
            f"({verdict} the published `{source['published']}`)."
        )
    if "fid" in report["metrics"]:
        lines.append(
            f"FID and KID (± std over subsets) compare each row's {report['n_images']} outputs with the ground "
            "truth; FID is biased at small sample sizes, so compare rows only within this report."
        )
    if report["unavailable"]:
        lines += ["", "## Not computed", ""]
        lines += [f"- {METRICS[m].label}: {reason}" for m, reason in report["unavailable"].items()]
    if report["skipped_images"]:
        lines += ["", f"Skipped {len(report['skipped_images'])} unreadable images (listed in report.json)."]
    if "human" in report:
        lines += ["", *human_lines(report["human"])]
    if "sweep" in report:
        lines += ["", *sweep_lines(report["sweep"])]
    if "hints" in report:
        lines += ["", *hint_curve_lines(report["hints"])]
    lines += [
        "",
        "## Files",
        "",
        f"- `grid.png`: input | each model | ground truth for images {', '.join(report['grid_images'])}",
        "- `per_image.csv`: every metric for every image and model",
        "- `charts/`: "
        + ", ".join(f"`{m}.png`" for m in report["metrics"])
        + (", `hint_curve.png` (ΔE2000 against the number of hints)" if "hints" in report else ""),
        "",
        "## Time (seconds, this machine)",
        "",
        "| model | inference | metrics |",
        "|---|---|---|",
        *(f"| {n} | {s['inference']:.1f} | {s['metrics']:.1f} |" for n, s in report["seconds"].items()),
        "",
        "Sources: " + "; ".join(f"{n} = `{s}`" for n, s in config.get("sources", {}).items()),
        "",
    ]
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | np.floating):
        value = float(value)
        return None if math.isnan(value) else (("inf" if value > 0 else "-inf") if math.isinf(value) else value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_per_image_csv(per_image: list[dict], path: Path) -> None:
    columns = ["image", "model", *_per_image_metrics(per_image)]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: row[k] for k in columns} for row in per_image)


def comparison_grid(raw: dict, images: Any, names: list[str], *, tile: int = 192) -> Image.Image:
    """Rows: the chosen images; columns: input (the grayscale baseline's output is exactly it) | models | truth."""
    indices, outputs = raw["grid"]["indices"], raw["grid"]["outputs"]
    models = [n for n in names if n != names[0]]  # names[0] is the baseline, shown as the input column
    columns = [("input (L)", outputs[names[0]]), *((n, outputs[n]) for n in models)]
    columns.append((GROUND_TRUTH, {i: images.rgb[i] for i in indices}))
    header, pad = 28, 4
    canvas = Image.new("RGB", (len(columns) * (tile + pad) + pad, header + len(indices) * (tile + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=14)
    for col, (label, by_index) in enumerate(columns):
        x = pad + col * (tile + pad)
        draw.text((x + 2, 6), label[:24], fill="black", font=font)
        for row, index in enumerate(indices):
            thumb = Image.fromarray(by_index[index]).resize((tile, tile), Image.Resampling.LANCZOS)
            canvas.paste(thumb, (x, header + row * (tile + pad)))
    return canvas


def _bound(stat: dict, key: str) -> float:
    value = stat.get(key)
    return float("nan") if value is None else float(value)


def bar_chart(report: dict, metric: str) -> Figure:
    """One bar per model with its CI (or KID's ± std) as whiskers; the baseline bar in grey."""
    names, summary = report["models"], report["summary"]
    means = np.array([summary[n][metric]["mean"] for n in names], dtype=float)
    shown = np.where(np.isfinite(means), means, np.nan)  # an infinite PSNR cannot be drawn as a bar
    lows, highs = (np.array([_bound(summary[n][metric], key) for n in names]) for key in ("low", "high"))
    errors = np.nan_to_num(np.vstack([shown - lows, highs - shown]), nan=0.0, posinf=0.0).clip(min=0.0)
    fig = Figure(figsize=(1.3 * len(names) + 2.5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    colors = ["0.65", *[f"C{i}" for i in range(len(names) - 1)]]
    ax.bar(range(len(names)), np.nan_to_num(shown), yerr=errors, capsize=5, color=colors)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    label = _label(metric)
    ax.set_title(f"{label} (mean, 95% bootstrap CI)" if metric != "fid" else label)
    for x, value in enumerate(means):
        if math.isinf(value):
            ax.annotate("∞", (x, 0), ha="center", va="bottom")
    return fig


def write_report(report: dict, raw: dict, images: Any, out: Path) -> Path:
    """Write every report file into `out` (created); returns `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(_jsonable(report), indent=2, ensure_ascii=False) + "\n", "utf-8")
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    write_per_image_csv(raw["per_image"], out / "per_image.csv")
    if raw["grid"]["indices"]:
        comparison_grid(raw, images, report["models"]).save(out / "grid.png")
    charts = out / "charts"
    charts.mkdir(exist_ok=True)
    for metric in report["metrics"]:
        bar_chart(report, metric).savefig(charts / f"{metric}.png", dpi=100)
    if "hints" in report:
        hint_curve_chart(report["hints"]).savefig(charts / "hint_curve.png", dpi=100)
    return out
