"""The ControlNet diffusion colorizer with tiny in-code components: sampling, samples, prompts, progress, save/load.

.venv/bin/python -m pytest tests/test_diffusion.py -q -x
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skimage_data

from models.color import rgb_to_lab
from models.diffusion import (
    DiffusionColorizer,
    DiffusionSettings,
    SamplingCancelled,
    create_diffusion_components,
    save_diffusion_colorizer,
)
from models.diffusion_components import BASE_SUBFOLDERS, DiffusionComponents, load_base_components, tokenize_prompts
from models.diffusion_tiny import TINY_BASE_MODEL
from models.hub import DIFFUSION_MARKER, load_colorizer

FAST = {"num_inference_steps": 2, "working_size": 24}  # tiny and few steps: the tests check behaviour, not quality


def _wake_controlnet(components: DiffusionComponents, seed: int = 1) -> DiffusionComponents:
    """Give the zero-initialised ControlNet outputs random weights, so the conditioning image matters."""
    generator = torch.Generator().manual_seed(seed)
    zero_convs = [*components.controlnet.controlnet_down_blocks, components.controlnet.controlnet_mid_block]
    with torch.no_grad():
        for conv in zero_convs:
            for parameter in conv.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return components


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def _lightness(image: Image.Image) -> torch.Tensor:
    rgb = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).double() / 255.0
    return rgb_to_lab(rgb)[0]


@pytest.fixture(scope="module")
def colorizer() -> DiffusionColorizer:
    settings = DiffusionSettings(num_inference_steps=2, resolution=24)  # the defaults colorize_batch uses
    return DiffusionColorizer(_wake_controlnet(create_diffusion_components(TINY_BASE_MODEL)), settings=settings)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    """A real colour photograph, at an odd size that is not a multiple of the model's."""
    return Image.fromarray(skimage_data.astronaut()).resize((60, 45), Image.Resampling.LANCZOS)


@pytest.fixture(scope="module")
def saved(colorizer: DiffusionColorizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return colorizer.save_pretrained(tmp_path_factory.mktemp("diffusion") / "controlnet_tiny")


def test_tiny_components_are_built_offline_with_a_working_tokenizer() -> None:
    components = create_diffusion_components(TINY_BASE_MODEL)
    ids = tokenize_prompts(components.tokenizer, ["A red car", ""])
    assert ids.shape == (2, components.tokenizer.model_max_length)
    assert components.tokenizer.decode(ids[0], skip_special_tokens=True) == "a red car"  # CLIP lower-cases
    assert int(ids.max()) < components.text_encoder.config.vocab_size
    assert components.controlnet.dtype == torch.float32
    assert components.size_multiple == 4  # 2x VAE downsampling times one UNet downsampling
    assert DiffusionColorizer(components).settings.resolution == components.native_resolution == 64


def test_output_has_the_input_size_and_lightness(colorizer: DiffusionColorizer, astronaut: Image.Image) -> None:
    output = colorizer.colorize(astronaut, **FAST)
    assert output.size == astronaut.size and output.mode == "RGB"
    # 8-bit rounding of the recombined colour moves L by well under one unit
    assert float((_lightness(output)[0] - _lightness(astronaut)[0]).abs().max()) < 1.0
    assert float(_lightness(output)[1:].abs().mean()) > 0.5, "the colorizer returned a gray image"


def test_grayscale_input_keeps_its_lightness(colorizer: DiffusionColorizer) -> None:
    gray = Image.fromarray(skimage_data.camera()).resize((64, 48))
    output = colorizer.colorize(gray, **FAST)
    assert float((_lightness(output)[0] - _lightness(gray)[0]).abs().max()) < 1.0


def test_sampling_is_deterministic_for_a_seed(colorizer: DiffusionColorizer, astronaut: Image.Image) -> None:
    first = _pixels(colorizer.colorize(astronaut, seed=3, **FAST))
    again = _pixels(colorizer.colorize(astronaut, seed=3, **FAST))
    other = _pixels(colorizer.colorize(astronaut, seed=4, **FAST))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_samples_are_distinct_and_sample_k_uses_seed_plus_k(
    colorizer: DiffusionColorizer, astronaut: Image.Image
) -> None:
    samples = colorizer.colorize_samples(astronaut, num_samples=3, seed=10, **FAST)
    assert len(samples) == 3 and all(s.size == astronaut.size for s in samples)
    assert not np.array_equal(_pixels(samples[0]), _pixels(samples[1]))
    assert np.array_equal(_pixels(samples[1]), _pixels(colorizer.colorize(astronaut, seed=11, **FAST)))


def test_the_gray_input_steers_the_colours(colorizer: DiffusionColorizer, astronaut: Image.Image) -> None:
    flipped = astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    ab = colorizer.colorize(astronaut, seed=0, **FAST)
    ab_flipped = colorizer.colorize(flipped, seed=0, **FAST).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    # same noise, different conditioning: the ControlNet must change the result
    assert not np.array_equal(_pixels(ab), _pixels(ab_flipped))


def test_text_prompt_and_empty_prompt_both_work(colorizer: DiffusionColorizer, astronaut: Image.Image) -> None:
    empty = colorizer.colorize(astronaut, prompt="", seed=0, **FAST)
    prompted = colorizer.colorize(astronaut, prompt="a sunny beach, blue sky", guidance_scale=5.0, seed=0, **FAST)
    assert empty.size == prompted.size == astronaut.size
    assert not np.array_equal(_pixels(empty), _pixels(prompted))


@pytest.mark.parametrize("scheduler", ["unipc", "ddim"])
def test_both_schedulers_sample(colorizer: DiffusionColorizer, astronaut: Image.Image, scheduler: str) -> None:
    output = colorizer.colorize(astronaut, scheduler=scheduler, **FAST)
    assert output.size == astronaut.size


def test_bad_sampling_arguments_fail_with_a_sentence(colorizer: DiffusionColorizer, astronaut: Image.Image) -> None:
    with pytest.raises(ValueError, match="Unknown scheduler 'euler'"):
        colorizer.colorize(astronaut, scheduler="euler", **FAST)
    with pytest.raises(ValueError, match="num_samples"):
        colorizer.colorize_samples(astronaut, num_samples=0, **FAST)


def test_progress_is_reported_each_step_and_sampling_can_be_cancelled(
    colorizer: DiffusionColorizer, astronaut: Image.Image
) -> None:
    seen: list[tuple[int, int]] = []
    colorizer.colorize(
        astronaut, num_inference_steps=3, working_size=24, progress_callback=lambda s, t: seen.append((s, t))
    )
    assert seen == [(1, 3), (2, 3), (3, 3)]

    cancel = threading.Event()
    steps: list[int] = []

    def press_cancel_at_step_two(step: int, total: int) -> None:
        steps.append(step)
        if step == 2:
            cancel.set()

    with pytest.raises(SamplingCancelled, match="after step 2 of 50"):
        colorizer.colorize(
            astronaut,
            num_inference_steps=50,
            working_size=24,
            progress_callback=press_cancel_at_step_two,
            cancel_event=cancel,
        )
    assert steps == [1, 2]
    with pytest.raises(SamplingCancelled, match="before it started"):
        colorizer.colorize(astronaut, cancel_event=cancel, **FAST)


def test_keep_aspect_and_flip_average_reach_the_sampler_too(
    colorizer: DiffusionColorizer, astronaut: Image.Image
) -> None:
    wide = astronaut.crop((0, 0, 60, 30))
    plain = colorizer.colorize(wide, **FAST)
    steadied = colorizer.colorize(wide, keep_aspect=True, flip_average=True, **FAST)
    assert plain.size == steadied.size == wide.size
    assert not np.array_equal(_pixels(plain), _pixels(steadied))
    assert float((_lightness(steadied)[0] - _lightness(wide)[0]).abs().max()) < 1.0


def test_colorize_batch_matches_single_images(colorizer: DiffusionColorizer, astronaut: Image.Image) -> None:
    gray = Image.fromarray(skimage_data.camera()).resize((40, 40))
    batch = colorizer.colorize_batch([astronaut, gray])
    single = colorizer.colorize(gray)  # the default seed, steps and working size, like the batch
    assert [image.size for image in batch] == [astronaut.size, gray.size]
    assert np.abs(_pixels(batch[1]) - _pixels(single)).max() <= 1  # batched convolutions may round differently


def test_save_load_round_trip_through_load_colorizer(
    colorizer: DiffusionColorizer, saved: Path, astronaut: Image.Image
) -> None:
    for subfolder in (*BASE_SUBFOLDERS, "controlnet"):
        assert (saved / subfolder).is_dir()
    assert list(saved.glob("*/*.safetensors")) and not list(saved.rglob("*.bin"))
    loaded = load_colorizer(saved)
    assert isinstance(loaded, DiffusionColorizer) and loaded.name == saved.name
    assert "pretrained Stable Diffusion base" in loaded.card  # the card says the tiny model is not useful
    original = colorizer.components.controlnet.state_dict()
    for key, value in loaded.components.controlnet.state_dict().items():
        assert torch.equal(value, original[key]), key
    assert np.array_equal(_pixels(loaded.colorize(astronaut, **FAST)), _pixels(colorizer.colorize(astronaut, **FAST)))


def test_saved_folder_is_a_diffusers_pipeline(saved: Path) -> None:
    from diffusers import StableDiffusionControlNetPipeline

    pipeline = StableDiffusionControlNetPipeline.from_pretrained(saved)
    assert pipeline.safety_checker is None and pipeline.controlnet is not None


def test_saving_again_keeps_extra_files(colorizer: DiffusionColorizer, tmp_path: Path) -> None:
    folder = colorizer.save_pretrained(tmp_path / "model")
    Image.new("RGB", (4, 4)).save(folder / "samples.png")
    colorizer.save_pretrained(folder)
    assert (folder / "samples.png").is_file() and (folder / DIFFUSION_MARKER).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folders left behind


@pytest.mark.parametrize("component", ["vae", "tokenizer", "controlnet"])
def test_a_missing_component_fails_with_a_clear_message(saved: Path, tmp_path: Path, component: str) -> None:
    broken = Path(shutil.copytree(saved, tmp_path / "broken"))
    shutil.rmtree(broken / component)
    with pytest.raises(ValueError, match=f"{component}/"):
        load_colorizer(broken)


def test_a_broken_marker_fails_with_a_clear_message(saved: Path, tmp_path: Path) -> None:
    broken = Path(shutil.copytree(saved, tmp_path / "broken"))
    (broken / DIFFUSION_MARKER).write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="could not be read"):
        load_colorizer(broken)
    (broken / DIFFUSION_MARKER).write_text(json.dumps({"format": "other"}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a ColorLab diffusion marker"):
        load_colorizer(broken)


def test_controlnet_only_folder_takes_its_base_from_base_model(
    colorizer: DiffusionColorizer, saved: Path, tmp_path: Path, astronaut: Image.Image
) -> None:
    base = load_base_components(saved, controlnet_source=saved / "controlnet")
    base.base_model = str(saved)  # the base as a trainer would load it with --base_model
    shipped = save_diffusion_colorizer(base, tmp_path / "shipped", include_base=False)
    assert sorted(p.name for p in shipped.iterdir()) == ["README.md", DIFFUSION_MARKER, "controlnet"]
    loaded = load_colorizer(shipped)
    assert np.array_equal(_pixels(loaded.colorize(astronaut, **FAST)), _pixels(colorizer.colorize(astronaut, **FAST)))


def test_the_tiny_base_cannot_be_shipped_without_its_weights(colorizer: DiffusionColorizer, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be saved with the ControlNet"):
        colorizer.save_pretrained(tmp_path / "model", include_base=False)


def test_an_incomplete_base_folder_is_named(saved: Path, tmp_path: Path) -> None:
    base = Path(shutil.copytree(saved, tmp_path / "base"))
    shutil.rmtree(base / "unet")
    with pytest.raises(ValueError, match="lacks unet/"):
        load_base_components(base)


@pytest.mark.skipif(os.environ.get("HF_HUB_OFFLINE") != "1", reason="needs HF_HUB_OFFLINE=1 (no network retries)")
def test_an_unreachable_hub_base_fails_with_a_sentence() -> None:
    with pytest.raises(ValueError, match="Could not load the UNet"):
        create_diffusion_components("nobody/no-such-stable-diffusion")
