"""The diffusers ControlNet training step of the diffusion colorizer (used by `trainer/train.py --model controlnet`).

    components = prepare_for_training(create_diffusion_components("tiny"), weight_dtype=torch.float32, device="cpu")
    batch = make_training_batch(sample["L"], sample["ab"], components.tokenizer, captions=None)
    loss = controlnet_training_step(components, batch, proportion_empty_prompts=0.1, generator=generator)
    accelerator.backward(loss)   # only the ControlNet has trainable parameters

It follows diffusers' examples/controlnet/train_controlnet.py: the VAE, UNet and text encoder are
frozen in the mixed-precision dtype, the ControlNet stays float32 (its optimizer needs full-precision
weights), the target is the VAE latent of the colour photo, and the loss is the MSE between the
UNet's prediction (with the ControlNet's residuals added) and the noise (or the velocity, for
v-prediction bases). Every random draw comes from `generator`, so a resumed run can repeat a step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.utils.torch_utils import randn_tensor
from transformers import CLIPTokenizer

from models.diffusion import conditioning_image, target_pixels
from models.diffusion_components import DiffusionComponents, cast_module, make_noise_scheduler, tokenize_prompts


def prepare_for_training(
    components: DiffusionComponents, *, weight_dtype: torch.dtype, device: str | torch.device
) -> DiffusionComponents:
    """Freeze the base in `weight_dtype` on `device`; the ControlNet is trainable and must be float32."""
    for module in components.base_modules():
        module.requires_grad_(False)
        cast_module(module, weight_dtype).to(device=device).eval()
    controlnet = components.controlnet.to(device=device)
    if controlnet.dtype != torch.float32:
        raise ValueError(
            f"The ControlNet is {controlnet.dtype}; it must be float32 while training (mixed precision only casts the "
            "frozen base), so load it without torch_dtype."
        )
    controlnet.requires_grad_(True)
    controlnet.train()
    return components


def make_training_batch(
    l_norm: torch.Tensor,
    ab_norm: torch.Tensor,
    tokenizer: CLIPTokenizer,
    *,
    captions: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Trainer batch ({"L", "ab"} + optional caption column) -> the tensors the step consumes."""
    if l_norm.dim() != 4 or l_norm.shape[1] != 1 or ab_norm.shape[1] != 2 or l_norm.shape[-2:] != ab_norm.shape[-2:]:
        raise ValueError(
            f"Expected L (B, 1, H, W) and ab (B, 2, H, W) of the same size, got {tuple(l_norm.shape)} and "
            f"{tuple(ab_norm.shape)}; build them with models.color.rgb_to_model_space."
        )
    captions = [""] * l_norm.shape[0] if captions is None else list(captions)
    if len(captions) != l_norm.shape[0]:
        raise ValueError(f"Got {len(captions)} captions for {l_norm.shape[0]} images; pass one caption per image.")
    return {
        "pixel_values": target_pixels(l_norm, ab_norm),
        "conditioning_pixel_values": conditioning_image(l_norm),
        "input_ids": tokenize_prompts(tokenizer, captions),
    }


def drop_prompts(
    input_ids: torch.Tensor, tokenizer: CLIPTokenizer, proportion: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Replace a random `proportion` of the prompts by the empty prompt (so the model also learns unconditioned)."""
    if not 0.0 <= proportion <= 1.0:
        raise ValueError(f"proportion_empty_prompts must be between 0 and 1, got {proportion}.")
    if proportion == 0.0:
        return input_ids
    draws = torch.rand(input_ids.shape[0], generator=generator, device=generator.device if generator else "cpu")
    drop = (draws < proportion).to(input_ids.device)
    empty = tokenize_prompts(tokenizer, [""]).to(input_ids.device)
    return torch.where(drop[:, None], empty, input_ids)


def _random_timesteps(count: int, scheduler: DDPMScheduler, generator: torch.Generator | None, device: Any) -> Any:
    where = generator.device if generator is not None else device
    steps = torch.randint(0, scheduler.config.num_train_timesteps, (count,), generator=generator, device=where)
    return steps.to(device).long()


def controlnet_training_step(
    components: DiffusionComponents,
    batch: dict[str, torch.Tensor],
    *,
    controlnet: torch.nn.Module | None = None,
    noise_scheduler: DDPMScheduler | None = None,
    proportion_empty_prompts: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One forward pass of the diffusers ControlNet recipe; returns the scalar loss (call backward on it).

    `controlnet` overrides `components.controlnet` with the trainer's prepared (e.g. DDP-wrapped) module.
    `noise_scheduler` defaults to a DDPM scheduler built from the base model's scheduler config.
    """
    controlnet = components.controlnet if controlnet is None else controlnet
    scheduler = noise_scheduler or make_noise_scheduler(components)
    weight_dtype = components.unet.dtype
    device = components.unet.device
    control_dtype = next(controlnet.parameters()).dtype

    pixels = batch["pixel_values"].to(device=device, dtype=weight_dtype)
    with torch.no_grad():  # the frozen base builds the inputs; only the ControlNet needs a graph
        latent_dist = components.vae.encode(pixels).latent_dist
        latents = latent_dist.sample(generator=generator) * components.vae.config.scaling_factor
        input_ids = drop_prompts(batch["input_ids"], components.tokenizer, proportion_empty_prompts, generator)
        text_states = components.text_encoder(input_ids.to(device))[0]
    noise = randn_tensor(latents.shape, generator=generator, device=device, dtype=latents.dtype)
    timesteps = _random_timesteps(latents.shape[0], scheduler, generator, device)
    noisy_latents = scheduler.add_noise(latents, noise, timesteps)

    down_residuals, mid_residual = controlnet(
        noisy_latents.to(control_dtype),
        timesteps,
        encoder_hidden_states=text_states.to(control_dtype),
        controlnet_cond=batch["conditioning_pixel_values"].to(device=device, dtype=control_dtype),
        return_dict=False,
    )
    prediction = components.unet(
        noisy_latents,
        timesteps,
        encoder_hidden_states=text_states,
        down_block_additional_residuals=[residual.to(weight_dtype) for residual in down_residuals],
        mid_block_additional_residual=mid_residual.to(weight_dtype),
        return_dict=False,
    )[0]

    prediction_type = scheduler.config.prediction_type
    if prediction_type == "epsilon":
        target = noise
    elif prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        raise ValueError(f"Unsupported prediction type '{prediction_type}' in the base model's scheduler config.")
    return F.mse_loss(prediction.float(), target.float(), reduction="mean")
