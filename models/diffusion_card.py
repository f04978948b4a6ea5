"""The model card (README.md with Hub metadata) of a saved ControlNet diffusion colorizer.

The trainer fills `card_data` (dataset, steps, command, metrics, sample_grid, notes) as for the GAN
colorizers; the card says plainly when the base is the tiny in-code one, whose colours are meaningless.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from huggingface_hub import ModelCard, ModelCardData

from models.diffusion_components import DiffusionComponents
from models.diffusion_tiny import TINY_BASE_MODEL
from models.model_card import hub_dataset_ids, training_sections

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
    metadata = ModelCardData(
        library_name="diffusers",
        license=info.get("license", "apache-2.0"),
        pipeline_tag="image-to-image",
        base_model=None if tiny or not settings.base_model or "/" not in settings.base_model else settings.base_model,
        tags=["colorlab", "image-colorization", "controlnet", "diffusers", "stable-diffusion"],
        datasets=hub_dataset_ids(info.get("dataset")),
    )
    base_text = "the tiny in-code base" if tiny else f"`{settings.base_model}`"
    sections = [
        f"# {info.get('title', 'ControlNet colorizer')}",
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
        else f"only `controlnet/`; the base is loaded from `{settings.base_model}`"
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
    sections.append(
        "## Use\n```python\nfrom models.hub import load_colorizer\n\n"
        'colorizer = load_colorizer("PATH_OR_REPO_ID")\n'
        'colourings = colorizer.colorize_samples(PIL.Image.open("photo.jpg"), num_samples=4, seed=0)\n```'
    )
    return ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")
