"""The ControlNet diffusion colorizer: Stable Diffusion parts + a ControlNet conditioned on the gray image.

    from models.hub import load_colorizer
    colorizer = load_colorizer("outputs/controlnet")                    # a folder saved by the trainer
    images = colorizer.colorize_samples("photo.jpg", num_samples=4, seed=0, num_inference_steps=20)
    image = colorizer.colorize("photo.jpg")                              # one colouring: the saved seed

    colorizer = DiffusionColorizer(create_diffusion_components("tiny"))  # tiny, in code, untrained

It implements the `Colorizer` contract (`models.colorizer`) by sampling: `extra_options` declares
`num_samples`, so the shared `colorize_samples` returns several plausible colourings per photo, one per
seed, with the saved `DiffusionSettings` as the defaults. The ControlNet sees the working-size lightness
(L / 100 replicated to RGB, in [0, 1]); the sampled RGB is converted to Lab and only its ab is kept, so
the shared `Colorizer.finish` recombines it with the input's full-resolution L (diffusion may not change
structure). Sampling runs diffusers' `StableDiffusionControlNetPipeline` (no safety checker) with UniPC
or DDIM.

On disk a colorizer is a diffusers folder (`unet/`, `vae/`, `text_encoder/`, `tokenizer/`,
`scheduler/`, `controlnet/`, `model_index.json`, so `StableDiffusionControlNetPipeline.from_pretrained`
reads it too) plus `colorlab_diffusion.json` (sampling defaults, base model) and a model card. A folder
may hold only `controlnet/` when `base_model` names a Hub id or folder to take the base from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import StableDiffusionControlNetPipeline

from models.color import model_space_to_rgb, normalize_ab, rgb_to_lab
from models.colorizer import NUM_SAMPLES, Colorizer, ProgressCallback, SamplingCancelled  # the last: re-exported too
from models.diffusion_card import render_diffusion_card
from models.diffusion_components import (
    BASE_SUBFOLDERS,
    CONTROLNET_SUBFOLDER,
    DiffusionComponents,
    cast_module,
    load_base_components,
    load_controlnet,
    make_scheduler,
    missing_subfolders,
)
from models.diffusion_settings import DiffusionSettings
from models.diffusion_tiny import TINY_BASE_MODEL, build_tiny_components
from models.hub_files import DIFFUSION_MARKER, looks_like_repo_id, write_folder_atomically


def assemble_pipeline(components: Any, scheduler: Any) -> StableDiffusionControlNetPipeline:
    """A diffusers ControlNet pipeline over `components` (no safety checker: outputs are only a/b colour)."""
    return StableDiffusionControlNetPipeline(
        vae=components.vae,
        text_encoder=components.text_encoder,
        tokenizer=components.tokenizer,
        unet=components.unet,
        controlnet=components.controlnet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def default_settings(components: DiffusionComponents) -> DiffusionSettings:
    """Sampling defaults for components without saved settings: the base's own resolution."""
    return DiffusionSettings(base_model=components.base_model, resolution=components.native_resolution)


def conditioning_image(l_norm: torch.Tensor) -> torch.Tensor:
    """ControlNet's input: (B, 1, H, W) normalised L -> (B, 3, H, W) gray in [0, 1] (L / 100 on every channel).

    Training and sampling both go through here, so the ControlNet always sees the same encoding.
    """
    return ((l_norm + 1.0) / 2.0).clamp(0.0, 1.0).expand(-1, 3, -1, -1).contiguous()


def target_pixels(l_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
    """The colour photo the VAE encodes during training: sRGB in [-1, 1], (B, 3, H, W)."""
    return model_space_to_rgb(l_norm, ab_norm) * 2.0 - 1.0


def create_diffusion_components(
    base_model: str = TINY_BASE_MODEL,
    *,
    revision: str | None = None,
    dtype: torch.dtype = torch.float32,
    controlnet_source: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> DiffusionComponents:
    """The trainer's entry point: `tiny` builds the tiny base in code; anything else is loaded."""
    if base_model == TINY_BASE_MODEL:
        components = build_tiny_components(seed=seed)
        for module in components.base_modules():
            cast_module(module, dtype)
        if controlnet_source is not None:
            components.controlnet = load_controlnet(controlnet_source)
        return components
    return load_base_components(base_model, revision=revision, dtype=dtype, controlnet_source=controlnet_source)


class DiffusionColorizer(Colorizer):
    """The `Colorizer` contract by sampling: `num_samples` plausible colourings per photo, one per seed."""

    def __init__(
        self,
        components: DiffusionComponents,
        *,
        settings: DiffusionSettings | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        name: str | None = None,
        card: str = "",
    ) -> None:
        """`dtype` casts every component (float16 on a GPU); None keeps the dtypes as given (the trainer's)."""
        super().__init__(name=name or "controlnet", card=card, device=device)
        was_training = components.controlnet.training  # the trainer builds one mid-training to draw samples
        self.components = components
        self.settings = settings or default_settings(components)
        #: trainer-provided metadata for the model card (dataset, steps, command, metrics, sample_grid, notes)
        self.card_data: dict[str, Any] = {}
        for module in [*components.base_modules(), components.controlnet]:
            if dtype is not None:
                cast_module(module, dtype)
            module.to(device=self.device).eval()
        components.controlnet.train(was_training)

    @property
    def native_working_size(self) -> int:
        """The working size the ControlNet was trained at (its saved settings)."""
        return self.settings.resolution

    @property
    def size_multiple(self) -> int:
        return self.components.size_multiple

    @property
    def extra_options(self) -> dict[str, Any]:
        """Per-call sampling options with this model's saved defaults (sample k uses seed + k)."""
        defaults = self.settings
        return {
            NUM_SAMPLES: 1,
            "num_inference_steps": defaults.num_inference_steps,
            "seed": defaults.seed,
            "prompt": defaults.prompt,
            "guidance_scale": defaults.guidance_scale,
            "scheduler": defaults.scheduler,
        }

    def resolve_options(self, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        resolved = super().resolve_options(options)
        steps = resolved["num_inference_steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"num_inference_steps must be a whole number of at least 1, got {steps!r}.")
        return resolved

    @property
    def architecture(self) -> str:
        return type(self.components.controlnet).__name__

    def num_parameters(self) -> int:
        """The ControlNet's parameters (the trained part; the frozen base is not counted)."""
        return sum(p.numel() for p in self.components.controlnet.parameters())

    def _pipeline(self, scheduler: str) -> StableDiffusionControlNetPipeline:
        # A fresh pipeline (and scheduler) per call: schedulers keep per-run state, and the app samples
        # from several threads at once. Building one only wires references together.
        pipeline = assemble_pipeline(self.components, make_scheduler(self.components, scheduler))
        pipeline.set_progress_bar_config(disable=True)
        return pipeline

    @torch.inference_mode()
    def predict_ab(
        self,
        l_norm: torch.Tensor,
        *,
        progress_callback: ProgressCallback | None = None,
        cancel_event: threading.Event | None = None,
        **options: Any,
    ) -> torch.Tensor:
        """(B, 1, h, w) normalised L -> (B * num_samples, 2, h, w) normalised ab, image-major.

        `options`: num_samples, num_inference_steps, seed, prompt, guidance_scale, scheduler ('unipc' | 'ddim');
        the saved settings fill the rest. Sample k of every image starts from the noise of `seed + k`, so one
        seed always gives the same colouring, whatever the batch or the number of samples. With an empty prompt
        classifier-free guidance is skipped: both of its branches would see the same empty text, so it cannot
        change the result and would only double the work.
        """
        chosen = self.resolve_options(options)
        num_samples, steps, seed = chosen[NUM_SAMPLES], chosen["num_inference_steps"], chosen["seed"]
        prompt = chosen["prompt"]
        if cancel_event is not None and cancel_event.is_set():
            raise SamplingCancelled("Sampling was cancelled before it started.")
        batch = l_norm.shape[0]
        side_h, side_w = l_norm.shape[-2:]
        generators = [torch.Generator().manual_seed(seed + k) for _ in range(batch) for k in range(num_samples)]

        def on_step_end(pipeline: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            if progress_callback is not None:
                progress_callback(step + 1, steps)
            if cancel_event is not None and cancel_event.is_set():
                raise SamplingCancelled(f"Sampling was cancelled after step {step + 1} of {steps}.")
            return tensors

        # A base in half precision beside a float32 ControlNet (the trainer's validation) needs autocast.
        base_dtype = self.components.unet.dtype
        mixed = base_dtype != self.components.controlnet.dtype
        precision = torch.autocast(self.device.type, dtype=base_dtype) if mixed else contextlib.nullcontext()
        was_training = self.components.controlnet.training
        self.components.controlnet.eval()
        try:
            with precision:
                rgb = self._pipeline(chosen["scheduler"])(
                    prompt=[prompt] * batch,
                    image=conditioning_image(l_norm.float()).to(self.device),
                    height=side_h,
                    width=side_w,
                    num_inference_steps=steps,
                    guidance_scale=chosen["guidance_scale"] if prompt.strip() else 1.0,
                    num_images_per_prompt=num_samples,
                    generator=generators,
                    output_type="pt",
                    callback_on_step_end=on_step_end,
                ).images
        finally:
            self.components.controlnet.train(was_training)  # the trainer samples mid-training
        return normalize_ab(rgb_to_lab(rgb.float().cpu())[:, 1:])

    def save_pretrained(self, folder: str | os.PathLike[str], *, include_base: bool | None = None) -> Path:
        return save_diffusion_colorizer(
            self.components, folder, settings=self.settings, card_data=self.card_data, include_base=include_base
        )


@dataclass
class _FolderWriter:
    """Writes a complete colorizer folder (into a staging folder that is then moved into place)."""

    components: DiffusionComponents
    settings: DiffusionSettings
    card_data: dict[str, Any] = field(default_factory=dict)

    def save_pretrained(self, staging: Path) -> None:
        parts = self.components
        if self.settings.includes_base:
            assemble_pipeline(parts, parts.scheduler).save_pretrained(staging, safe_serialization=True)
        else:
            parts.controlnet.save_pretrained(staging / CONTROLNET_SUBFOLDER, safe_serialization=True)
        render_diffusion_card(parts, self.settings, self.card_data).save(staging / "README.md")
        # the marker last: a folder only counts as a colorizer once everything else is written
        (staging / DIFFUSION_MARKER).write_text(json.dumps(self.settings.to_json(), indent=2) + "\n", encoding="utf-8")


def save_diffusion_colorizer(
    components: DiffusionComponents,
    folder: str | os.PathLike[str],
    *,
    settings: DiffusionSettings | None = None,
    card_data: dict[str, Any] | None = None,
    include_base: bool | None = None,
) -> Path:
    """Save in diffusers format through a staging folder (a crash never leaves half a component).

    `include_base=None` writes the frozen base only when it cannot be fetched again by name: a Hub
    base is referenced (the folder then holds only `controlnet/`, as diffusers' ControlNet trainer
    ships it), the tiny base and local folders are copied in.
    """
    settings = dataclasses.replace(settings or default_settings(components), base_model=components.base_model)
    if include_base is None:
        include_base = not looks_like_repo_id(components.base_model) or Path(components.base_model).exists()
    if not include_base and components.base_model == TINY_BASE_MODEL:
        raise ValueError(
            "The tiny base is built in code with random weights, so it must be saved with the ControlNet."
        )
    settings.includes_base = include_base
    # In training only controlnet/ changes (the base is frozen), so an interrupted re-save mixes whole components
    # of two saves; the marker moves last, so an interrupted first save never looks like a colorizer.
    writer = _FolderWriter(components, settings, dict(card_data or {}))
    return write_folder_atomically(folder, writer.save_pretrained, last=DIFFUSION_MARKER)


def read_settings(folder: Path) -> DiffusionSettings:
    marker = folder / DIFFUSION_MARKER
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{marker} could not be read ({error}); re-save the diffusion colorizer.") from error
    return DiffusionSettings.from_json(data, where=str(marker))


def load_diffusion_components(folder: str | os.PathLike[str], *, revision: str | None = None) -> DiffusionComponents:
    """The components saved in `folder`, taking the base from `base_model` when the folder has only `controlnet/`."""
    folder = Path(folder)
    settings = read_settings(folder)
    if missing_subfolders(folder, [CONTROLNET_SUBFOLDER]):
        raise ValueError(
            f"{folder} has no {CONTROLNET_SUBFOLDER}/ (config.json + safetensors); it is not a complete diffusion "
            "colorizer, so re-save it with save_diffusion_colorizer or download the whole repo."
        )
    missing = missing_subfolders(folder, BASE_SUBFOLDERS)
    controlnet_folder = folder / CONTROLNET_SUBFOLDER
    if not missing:
        components = load_base_components(folder, controlnet_source=controlnet_folder)
        components.base_model = settings.base_model
        return components
    if len(missing) == len(BASE_SUBFOLDERS) and not settings.includes_base and settings.base_model != TINY_BASE_MODEL:
        components = load_base_components(settings.base_model, revision=revision, controlnet_source=controlnet_folder)
        components.base_model = settings.base_model
        return components
    raise ValueError(
        f"{folder} lacks {', '.join(f'{m}/' for m in missing)}; copy the missing component folder(s) from the base "
        f"model '{settings.base_model}', or re-save the colorizer with include_base=True."
    )


def load_diffusion_colorizer(
    folder: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    name: str | None = None,
    dtype: torch.dtype | None = None,
) -> DiffusionColorizer:
    """What `models.hub.load_colorizer` returns for a folder with colorlab_diffusion.json.

    `dtype=None` runs float16 on a GPU and float32 on the CPU.
    """
    folder = Path(folder)
    components = load_diffusion_components(folder)
    if dtype is None:
        dtype = torch.float16 if torch.device(device).type == "cuda" else torch.float32
    card_file = folder / "README.md"
    card = card_file.read_text(encoding="utf-8") if card_file.is_file() else ""
    return DiffusionColorizer(
        components, settings=read_settings(folder), device=device, dtype=dtype, name=name or folder.name, card=card
    )
