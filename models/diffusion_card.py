"""The model card (README.md with Hub metadata) of a saved ControlNet diffusion colorizer.

The trainer fills `card_data` (dataset, steps, command, metrics, sample_grid, notes) as for the GAN
colorizers; the card says plainly when the base is the tiny in-code one, whose colours are meaningless.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import ModelCard, ModelCardData

from models.diffusion_components import DiffusionComponents
from models.diffusion_tiny import TINY_BASE_MODEL
from models.model_card import (
    eval_results,
    hub_dataset_ids,
    is_hub_id,
    limitations_section,
    training_sections,
    usage_section,
    widget_examples,
)

if TYPE_CHECKING:
    from models.diffusion import DiffusionSettings

_TINY_WARNING = (
    "**This is the tiny `controlnet_tiny` configuration**: every component (UNet, VAE, text encoder, tokenizer) "
    "was built in code with random weights so that tests and CPU demos run offline. It exercises the code paths "
    "only; its colourings are not useful. Useful quality needs a pretrained Stable Diffusion base model "
    "(`--base_model stable-diffusion-v1-5/stable-diffusion-v1-5` or a local copy) and real ControlNet training."
)


def _component_lines(components: DiffusionComponents) -> list[str]:
    rows = [
        ("ControlNet (trained)", components.controlnet),
        ("UNet (frozen base)", components.unet),
        ("VAE (frozen base)", components.vae),
        ("text encoder (frozen base)", components.text_encoder),
    ]
    return [
        f"- {label}: `{type(module).__name__}`, {components.num_parameters(module) / 1e6:.2f} M parameters"
        for label, module in rows
    ]


def render_diffusion_card(
    components: DiffusionComponents, settings: DiffusionSettings, card_data: dict[str, Any]
) -> ModelCard:
    """Card for a folder written by `models.diffusion.save_diffusion_colorizer`."""
    info = dict(card_data)
    tiny = settings.base_model == TINY_BASE_MODEL
    # Only a Hub id may go into `base_model:`; a local copy of a base (`--base_model /models/sd15`) is named in
    # the text by its folder name only.
    hub_base = not tiny and is_hub_id(settings.base_model)
    title = str(info.get("title", "ControlNet colorizer"))
    metadata = ModelCardData(
        model_name=title,
        library_name="diffusers",
        license=info.get("license", "apache-2.0"),
        pipeline_tag="image-to-image",
        base_model=settings.base_model if hub_base else None,
        tags=["colorlab", "image-colorization", "controlnet", "diffusers", "stable-diffusion"],
        datasets=hub_dataset_ids(info.get("dataset")),
        eval_results=eval_results(info),
        widget=widget_examples(info),
    )
    if tiny:
        base_text = "the tiny in-code base"
    elif hub_base:
        base_text = f"`{settings.base_model}`"
    else:
        base_text = f"a local copy of a base model (`{Path(str(settings.base_model)).name}`)"
    sections = [
        f"# {title}",
        "A ColorLab diffusion colorizer: a ControlNet conditioned on the grayscale image steers a frozen Stable "
        f"Diffusion base ({base_text}). It samples several plausible colourings per photo (one per seed); ColorLab "
        "keeps only the sampled a/b channels and recombines them with the input's full-resolution L, so outputs "
        "keep the input's size and lightness.",
    ]
    if tiny:
        sections.append(_TINY_WARNING)
    layout = (
        "the whole pipeline in diffusers format (`StableDiffusionControlNetPipeline.from_pretrained` reads it)"
        if settings.includes_base
        else f"only `controlnet/`; the base is loaded from {base_text}"
    )
    sections.append(
        "## Components\n"
        + "\n".join(_component_lines(components))
        + f"\n- this folder holds {layout}"
        + "\n- conditioning image: CIELAB L / 100 replicated to 3 channels, in [0, 1], at the working size"
        + f"\n- trained working size: {settings.resolution} px (sides are rounded to multiples of "
        f"{components.size_multiple})"
    )
    sections.append(
        "## Sampling defaults\n"
        f"- scheduler: {settings.scheduler}, {settings.num_inference_steps} steps, seed {settings.seed}\n"
        f"- guidance scale: {settings.guidance_scale} (applied only with a text prompt)\n"
        f"- prompt: {settings.prompt or '(empty)'!s}"
    )
    sections += training_sections(
        info, what="The ControlNet has", samples_caption="gray input | several sampled colourings | ground truth"
    )
    failure_modes = (
        "Each seed gives a different colouring and any one of them can be wrong in a convincing way; sampling is "
        "slow on a CPU, and quality depends on the base model far more than on the short ControlNet training."
    )
    sections.append(limitations_section(info, trained=bool(info.get("steps")), failure_modes=failure_modes))
    sections.append(
        usage_section('colourings = colorizer.colorize_samples(Image.open("photo.jpg"), num_samples=4, seed=0)')
    )
    return ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")
