"""A diffusion colorizer in the app: Colorize (samples, progress, cancel), the Arena, the UI and the Space bundle.

    .venv/bin/python -m pytest tests/test_app_diffusion.py -q -x

A tiny ControlNet colorizer (random in-code base, 2 sampling steps, trained size 32 px) is saved into
tmp_path and configured next to a tiny pix2pix, exactly as a trained one would be.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from app_support import launched, load_app, save_tiny_models
from gradio_client import Client, handle_file
from PIL import Image

from judge.ratings import RatingsStore
from models.diffusion import DiffusionColorizer, DiffusionSettings, create_diffusion_components
from models.diffusion_tiny import TINY_BASE_MODEL
from models.hub import DIFFUSION_MARKER
from space import app_logic as logic
from space import deploy
from space.model_pool import ModelPool, read_config_file
from space.outputs import OutputFolder

DIFFUSION = "controlnet"
TRAINED_SIZE = 32  # the diffusion model's resolution: the app samples there whatever working size is asked


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models.yaml with a tiny pix2pix and a tiny diffusion colorizer, both saved in Hub format."""
    folder = tmp_path_factory.mktemp("models")
    config = save_tiny_models(folder, ["pix2pix_tiny"])
    settings = DiffusionSettings(num_inference_steps=2, resolution=TRAINED_SIZE)
    colorizer = DiffusionColorizer(create_diffusion_components(TINY_BASE_MODEL), settings=settings)
    colorizer.save_pretrained(folder / "controlnet_tiny")
    data = yaml.safe_load(config.read_text())
    data["models"].append({"name": DIFFUSION, "source": str(folder / "controlnet_tiny")})
    config.write_text(yaml.safe_dump(data))
    return config


@pytest.fixture
def ctx(config: Path, tmp_path: Path):
    pool = ModelPool.load(read_config_file(config), fallback=False)
    store = RatingsStore(tmp_path / "data", rate_limit=None)
    yield logic.AppContext.build(pool, store, outputs=OutputFolder(tmp_path / "out"), seed=0)
    store.close()


@pytest.fixture
def upload(tmp_path: Path, photo) -> Path:
    path = tmp_path / "uploads" / "old photo.jpg"
    path.parent.mkdir()
    photo("camera").resize((90, 70)).save(path, quality=90)
    return path


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def test_the_diffusion_model_is_served_and_declares_its_sampling_options(ctx) -> None:
    assert ctx.pool.names() == ["pix2pix", DIFFUSION] and not ctx.pool.failures
    entry = ctx.pool.get(DIFFUSION)
    assert entry.draws_samples and not ctx.pool.get("pix2pix").draws_samples
    sampling = {"num_samples": 1, "num_inference_steps": 2, "seed": 0, "prompt": ""}
    assert entry.extra_options == {**sampling, "guidance_scale": 7.5, "scheduler": "unipc"}
    card = next(card for card in logic.model_cards(ctx) if card.name == DIFFUSION)
    assert "`num_samples`" in card.markdown and "pretrained Stable Diffusion base" in card.markdown


def test_colorize_answers_with_both_models_at_full_resolution(ctx, upload: Path) -> None:
    outcome = logic.colorize(ctx, upload, ["pix2pix", DIFFUSION], working_size=128)
    assert [(r.name, r.error, len(r.samples)) for r in outcome.results] == [("pix2pix", "", 1), (DIFFUSION, "", 1)]
    for result in outcome.results:
        with Image.open(result.image) as image:
            assert image.size == (90, 70)
    assert {r.name: r.working_size for r in outcome.results} == {"pix2pix": 128, DIFFUSION: TRAINED_SIZE}


def test_num_samples_gives_that_many_distinct_colourings_and_reports_steps(ctx, upload: Path) -> None:
    steps: list[tuple[str, int, int]] = []
    outcome = logic.colorize(
        ctx,
        upload,
        [DIFFUSION],
        options={"num_samples": 2, "num_inference_steps": 3, "seed": 5, "prompt": ""},
        progress=lambda name, step, total: steps.append((name, step, total)),
    )
    (result,) = outcome.results
    assert len(result.samples) == 2 and result.image == result.samples[0]
    assert [path.name for path in result.samples] == ["old_photo_controlnet.png", "old_photo_controlnet_2.png"]
    first, second = (_pixels(path) for path in result.samples)
    assert first.shape == (70, 90, 3) and np.abs(first - second).max() > 1  # seeds 5 and 6 differ
    assert steps == [(DIFFUSION, 1, 3), (DIFFUSION, 2, 3), (DIFFUSION, 3, 3)]
    # the seed picks the colouring: the first sample of seed 5 again, on its own
    again = logic.colorize(ctx, upload, [DIFFUSION], options={"num_inference_steps": 3, "seed": 5})
    assert np.abs(_pixels(again.results[0].image) - first).max() <= 1  # batched convolutions may round differently


def test_cancel_stops_sampling_and_keeps_the_models_that_finished(ctx, upload: Path) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def press_cancel(name: str, step: int, total: int) -> None:
        seen.append(step)
        cancel.set()

    outcome = logic.colorize(
        ctx,
        upload,
        ["pix2pix", DIFFUSION],
        options={"num_inference_steps": 50},
        progress=press_cancel,
        cancel_event=cancel,
    )
    assert outcome.cancelled and seen == [1]  # stopped after its first of 50 steps
    assert [result.name for result in outcome.results] == ["pix2pix"]


def test_the_cancel_registry_reaches_only_the_sessions_own_requests() -> None:
    registry = logic.CancelRegistry()
    with registry.running("alice") as mine, registry.running("bob") as theirs:
        assert registry.cancel("alice") == 1
        assert mine.is_set() and not theirs.is_set()
    assert registry.cancel("alice") == 0  # finished requests are forgotten


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_samples": 0}, "number of samples must be between 1 and 8"),
        ({"num_inference_steps": 1000}, "number of sampling steps must be between 1 and 100"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"prompt": "x" * 301}, "at most 300 characters"),
    ],
)
def test_bad_sampling_options_are_refused_with_a_sentence(ctx, upload: Path, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        logic.colorize(ctx, upload, [DIFFUSION], options=options)


def test_the_arena_pairs_the_diffusion_model_and_reveals_it_after_the_vote(ctx, upload: Path) -> None:
    round_ = logic.arena_round(ctx, upload, voter="v1")
    for path in (round_.image_a, round_.image_b):
        with Image.open(path) as image:
            assert image.size == (90, 70)
    vote = logic.arena_vote(ctx, round_.token, "a", voter="v1")
    assert {vote.model_a, vote.model_b} == {"pix2pix", DIFFUSION}


def test_the_ui_shows_a_gallery_of_samples_and_cancels(monkeypatch, tmp_path: Path, config: Path, upload) -> None:
    app = load_app(monkeypatch, tmp_path, config)
    with launched(app) as url:
        client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
        status, *outputs = client.predict(
            handle_file(str(upload)), ["pix2pix", DIFFUSION], 64, 1.0, 2, 2, 7, "", api_name="/colorize"
        )
        assert "90×70" in status
        _pix_header, _pix_slider, pix_png, header, slider, png, gallery = outputs  # (columns are not outputs)
        assert Path(pix_png).is_file() and Path(png).is_file()
        assert header.startswith(f"**{DIFFUSION}** · ") and f"working size {TRAINED_SIZE}" in header
        assert "2 samples" in header and len(slider) == 2
        assert gallery["visible"]  # an update: the gallery is shown only when a model drew several colourings
        assert [item["caption"] for item in gallery["value"]] == ["sample 1 (seed 7)", "sample 2 (seed 8)"]
        assert all(Path(item["image"]).is_file() for item in gallery["value"])
        assert client.predict(api_name="/cancel") == "Nothing is sampling now."


def test_the_space_bundle_ships_the_diffusion_folder_and_its_packages(config: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    assert deploy.main(["--space-id", "me/colorlab", "--dry-run", str(bundle), "--models", str(config)]) == 0
    shipped = bundle / "weights" / DIFFUSION
    source = Path(yaml.safe_load(config.read_text())["models"][1]["source"])

    def files(folder: Path) -> set[str]:
        return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}

    assert files(shipped) == files(source)  # every component, its config and the card
    assert {DIFFUSION_MARKER, "model_index.json", "controlnet/diffusion_pytorch_model.safetensors"} <= files(shipped)
    requirements = (bundle / "requirements.txt").read_text()
    assert "diffusers==" in requirements and "transformers==" in requirements
    served = ModelPool.load(read_config_file(bundle / "space" / "models.yaml"), root=bundle, fallback=False)
    assert served.names() == ["pix2pix", DIFFUSION] and not served.failures

    only_gan = tmp_path / "gan.yaml"
    only_gan.write_text(yaml.safe_dump({"models": yaml.safe_load(config.read_text())["models"][:1]}))
    assert deploy.main(["--space-id", "me/gan", "--dry-run", str(tmp_path / "gan"), "--models", str(only_gan)]) == 0
    assert "diffusers" not in (tmp_path / "gan" / "requirements.txt").read_text()
