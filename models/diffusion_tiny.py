"""The `controlnet_tiny` base: a Stable-Diffusion-shaped UNet, VAE, text encoder and tokenizer built in code.

    from models.diffusion_tiny import build_tiny_components
    components = build_tiny_components(seed=0)

No pretrained Stable Diffusion weights can be downloaded here, so tests, CPU demos and the trainer's
smoke runs use these randomly initialised parts (about 1.7 M parameters in all). They exercise every code
path of the diffusion colorizer but cannot produce useful colours: that needs a pretrained base model
(`--base_model stable-diffusion-v1-5/stable-diffusion-v1-5` or a local copy) and real training.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from tokenizers import pre_tokenizers
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from models.diffusion_components import DiffusionComponents, controlnet_from_unet

#: the `base_model` value that means "the tiny base built in code" (never read as a folder or Hub id)
TINY_BASE_MODEL = "tiny"  # as `--base_model tiny`; a local folder named tiny must be passed as ./tiny
TINY_RESOLUTION = 64
_MAX_PROMPT_TOKENS = 77  # as CLIP in Stable Diffusion, so prompts are truncated the same way
_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"


def tiny_tokenizer() -> CLIPTokenizer:
    """A CLIP byte-level BPE tokenizer with no merges: every character is a token, so no vocab file is needed.

    The vocabulary is CLIP's own first 512 entries (the 256 byte symbols, then the same with the
    end-of-word marker) plus its two special tokens, built from the byte-level alphabet.
    """
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate(alphabet)}
    vocab.update({symbol + "</w>": index + len(alphabet) for index, symbol in enumerate(alphabet)})
    vocab[_BOS] = len(vocab)
    vocab[_EOS] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=_MAX_PROMPT_TOKENS)


def tiny_text_encoder(tokenizer: CLIPTokenizer) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=_MAX_PROMPT_TOKENS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,  # CLIP pools the hidden state at the first end-of-text token
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config)


def tiny_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=TINY_RESOLUTION // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=16,
    )


def tiny_vae() -> AutoencoderKL:
    # Two blocks: one 2x downsampling, so a 64 px image is a 32 px latent (Stable Diffusion's VAE does 8x).
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=16,
        sample_size=TINY_RESOLUTION,
    )


def tiny_scheduler() -> DDIMScheduler:
    # Stable Diffusion v1's training noise schedule, so the same sampling code paths run.
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
        timestep_spacing="leading",
    )


def build_tiny_components(seed: int = 0) -> DiffusionComponents:
    """Tiny random base + a ControlNet made from its UNet; the same `seed` gives the same weights."""
    with torch.random.fork_rng(devices=[]):  # do not disturb the caller's random stream
        torch.manual_seed(seed)
        tokenizer = tiny_tokenizer()
        text_encoder = tiny_text_encoder(tokenizer)
        unet = tiny_unet()
        vae = tiny_vae()
        controlnet = controlnet_from_unet(unet, vae)
    for module in (unet, vae, text_encoder, controlnet):
        module.eval()
    return DiffusionComponents(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=tiny_scheduler(),
        controlnet=controlnet,
        base_model=TINY_BASE_MODEL,
    )
