"""The diffusers parts of the ControlNet colorizer: a Stable Diffusion base plus a ControlNet, loaded or saved.

    components = load_base_components("path/to/stable-diffusion-v1-5")   # or a Hub id
    components = load_base_components("user/sd-base", controlnet_source="user/colorizer-controlnet")

A base model is a diffusers folder (or Hub repo) with `unet/`, `vae/`, `text_encoder/`, `tokenizer/` and
`scheduler/`; the ControlNet is `ControlNetModel.from_unet(unet)` (the diffusers recipe: it starts as a
copy of the UNet's encoder) unless trained weights are given. Only safetensors are read, never pickles.
The tiny in-code base used by tests and CPU demos lives in `models/diffusion_tiny.py`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    ControlNetModel,
    DDIMScheduler,
    DDPMScheduler,
    SchedulerMixin,
    UNet2DConditionModel,
    UniPCMultistepScheduler,
)
from transformers import CLIPTextModel, CLIPTokenizer

BASE_SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
CONTROLNET_SUBFOLDER = "controlnet"
# The file whose presence shows a subfolder was saved by save_pretrained (weights are checked when loading).
_SUBFOLDER_CONFIG = {
    "unet": "config.json",
    "vae": "config.json",
    "text_encoder": "config.json",
    "tokenizer": "tokenizer_config.json",
    "scheduler": "scheduler_config.json",
    CONTROLNET_SUBFOLDER: "config.json",
}
# Sampling schedulers a user can pick; all are built from the base model's scheduler config.
SAMPLING_SCHEDULERS: dict[str, type[SchedulerMixin]] = {"unipc": UniPCMultistepScheduler, "ddim": DDIMScheduler}
# ControlNet's conditioning encoder must downsample the image exactly as much as the VAE does (8x for SD).
_CONDITIONING_CHANNELS = (16, 32, 96, 256)


@dataclass
class DiffusionComponents:
    """Everything a ControlNet colorizer is made of, in diffusers/transformers types."""

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    scheduler: SchedulerMixin
    controlnet: ControlNetModel
    #: where the frozen base came from: a folder, a Hub id, or the tiny in-code base
    base_model: str

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this: the VAE's downsampling times the UNet's."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)

    @property
    def native_resolution(self) -> int:
        """The image side the base was trained at (512 for Stable Diffusion 1.5, 64 for the tiny base)."""
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    def base_modules(self) -> list[torch.nn.Module]:
        return [self.unet, self.vae, self.text_encoder]

    def num_parameters(self, module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())


def cast_module(module: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """`module.to(dtype)` only when it changes something (diffusers warns on every cast, even a no-op one)."""
    return module if module.dtype == dtype else module.to(dtype=dtype)


def conditioning_channels_for(vae_scale_factor: int) -> tuple[int, ...]:
    """`conditioning_embedding_out_channels` whose downsampling (2 ** (n - 1)) matches the VAE's."""
    blocks = int(math.log2(vae_scale_factor)) + 1
    if 2 ** (blocks - 1) != vae_scale_factor or blocks > len(_CONDITIONING_CHANNELS):
        raise ValueError(f"A VAE scale factor of {vae_scale_factor} is not supported; use a power of two up to 8.")
    return _CONDITIONING_CHANNELS[:blocks]


def controlnet_from_unet(unet: UNet2DConditionModel, vae: AutoencoderKL) -> ControlNetModel:
    """A new ControlNet initialised from the UNet's encoder (the diffusers recipe); float32 even for a half base."""
    vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
    # from_unet builds a float32 module and copies (casting) the UNet's encoder weights into it
    return ControlNetModel.from_unet(
        unet, conditioning_embedding_out_channels=conditioning_channels_for(vae_scale_factor)
    )


def _explicit_config(scheduler: SchedulerMixin) -> dict[str, Any]:
    """The scheduler's config with every value explicit.

    diffusers' `from_config` lets the new class substitute its own defaults for keys listed in
    `_use_default_values` (keys the saved file lacked), so the same base would sample with different
    timestep spacings before and after a save/load round trip. Dropping that list pins the values.
    """
    return {key: value for key, value in scheduler.config.items() if key != "_use_default_values"}


def make_scheduler(components: DiffusionComponents, kind: str) -> SchedulerMixin:
    """A fresh sampling scheduler ('unipc' or 'ddim') built from the base model's scheduler config."""
    if kind not in SAMPLING_SCHEDULERS:
        raise ValueError(f"Unknown scheduler '{kind}'; choose one of: {', '.join(SAMPLING_SCHEDULERS)}.")
    return SAMPLING_SCHEDULERS[kind].from_config(_explicit_config(components.scheduler))


def make_noise_scheduler(components: DiffusionComponents) -> DDPMScheduler:
    """The training-time noise scheduler (DDPM, as in diffusers' train_controlnet.py) from the base config."""
    return DDPMScheduler.from_config(_explicit_config(components.scheduler))


def tokenize_prompts(tokenizer: CLIPTokenizer, prompts: Sequence[str]) -> torch.Tensor:
    """(B, model_max_length) input ids, padded and truncated as Stable Diffusion's pipelines do."""
    return tokenizer(
        list(prompts),
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


def missing_subfolders(folder: Path, names: Sequence[str]) -> list[str]:
    """The component subfolders of `folder` that are absent or were not written by save_pretrained."""
    return [name for name in names if not (folder / name / _SUBFOLDER_CONFIG[name]).is_file()]


def _load(what: str, source: str, loader: Any, **kwargs: Any) -> Any:
    """Call a from_pretrained, turning download / missing-file errors into one sentence."""
    try:
        return loader(source, use_safetensors=True, **kwargs)
    except (OSError, ValueError) as error:  # diffusers/transformers raise OSError (EnvironmentError) for files
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"Could not load the {what} from '{source}' ({first_line}); pass a local diffusers folder that has it in "
            "safetensors format, or a Hub id reachable from this machine."
        ) from error


def load_controlnet(source: str | os.PathLike[str], *, subfolder: str | None = None, **kwargs: Any) -> ControlNetModel:
    """Trained ControlNet weights (a folder with config.json + safetensors, or a Hub id), in float32."""
    if subfolder:
        kwargs["subfolder"] = subfolder
    return _load("ControlNet", str(source), ControlNetModel.from_pretrained, torch_dtype=torch.float32, **kwargs)


def load_base_components(
    source: str | os.PathLike[str],
    *,
    revision: str | None = None,
    dtype: torch.dtype = torch.float32,
    controlnet_source: str | os.PathLike[str] | None = None,
    controlnet_subfolder: str | None = None,
) -> DiffusionComponents:
    """Load a Stable Diffusion base (local folder or Hub id) and attach a ControlNet.

    The base is cast to `dtype` (the mixed-precision dtype while training); the ControlNet stays float32.
    Without `controlnet_source` a fresh ControlNet is made from the UNet.
    """
    source = str(source)
    local = Path(source).expanduser()
    if local.is_dir():
        missing = missing_subfolders(local, BASE_SUBFOLDERS)
        if missing:
            raise ValueError(
                f"{local} is not a complete Stable Diffusion base model: it lacks "
                f"{', '.join(f'{m}/' for m in missing)}; pass a diffusers folder with unet/, vae/, text_encoder/, "
                "tokenizer/ and scheduler/."
            )
        source = str(local)
    elif local.exists():
        raise ValueError(f"{source} is a file; a base model is a diffusers folder or a Hub id like 'user/name'.")
    hub = {"revision": revision} if revision else {}
    unet = _load("UNet (unet/)", source, UNet2DConditionModel.from_pretrained, subfolder="unet", **hub)
    vae = _load("VAE (vae/)", source, AutoencoderKL.from_pretrained, subfolder="vae", **hub)
    text_encoder = _load(
        "text encoder (text_encoder/)", source, CLIPTextModel.from_pretrained, subfolder="text_encoder", **hub
    )
    try:
        tokenizer = CLIPTokenizer.from_pretrained(source, subfolder="tokenizer", **hub)
        scheduler = DDIMScheduler.from_pretrained(source, subfolder="scheduler", **hub)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"Could not load the tokenizer/ or scheduler/ of '{source}' ({error}); pass a complete diffusers folder."
        ) from error
    for module in (unet, vae, text_encoder):
        cast_module(module, dtype)
    if controlnet_source is not None:
        controlnet = load_controlnet(controlnet_source, subfolder=controlnet_subfolder)
    else:
        controlnet = controlnet_from_unet(unet, vae)
    return DiffusionComponents(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        controlnet=controlnet,
        base_model=source,
    )
