"""Space packaging: the dry-run bundle's contents, that it serves the app on its own, and the (mocked) upload."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import yaml
from app_support import REPO_ROOT, free_port, save_tiny_models
from gradio_client import Client, handle_file
from PIL import Image

from space import deploy


def _front_matter(text: str) -> dict:
    return yaml.safe_load(re.match(r"^---\n(.*?)\n---\n", text, re.DOTALL).group(1))


def _models_config(tmp_path: Path, *, hub: bool) -> Path:
    config = save_tiny_models(tmp_path / "models", ["pix2pix_tiny", "unet_tiny"])
    if hub:
        data = yaml.safe_load(config.read_text())
        data["models"].append({"name": "community", "source": "someone/colorizer", "revision": "v2"})
        config.write_text(yaml.safe_dump(data))
    return config


def test_space_card_front_matter_matches_the_pins() -> None:
    front = _front_matter((REPO_ROOT / "space" / "README.md").read_text())
    gradio_pin = re.search(r"^gradio==(\S+)", (REPO_ROOT / "requirements.txt").read_text(), re.MULTILINE).group(1)
    assert front["sdk"] == "gradio" and str(front["sdk_version"]) == gradio_pin
    assert front["app_file"] == "app.py"
    assert front["python_version"] and front["title"] and front["emoji"]
    assert "models" in front


def test_dry_run_bundles_code_weights_hub_refs_card_and_requirements(tmp_path: Path, capsys) -> None:
    bundle = tmp_path / "bundle"
    code = deploy.main(
        ["--space_id", "me/colorlab", "--dry_run", str(bundle), "--models", str(_models_config(tmp_path, hub=True))]
    )
    assert code == 0 and "python app.py" in capsys.readouterr().out
    assert (bundle / "app.py").read_text() == (REPO_ROOT / "app.py").read_text()
    assert {"pipeline.py", "hub.py", "registry.py"} <= {p.name for p in (bundle / "models").glob("*.py")}
    assert {"app_logic.py", "model_pool.py", "deploy.py"} <= {p.name for p in (bundle / "space").iterdir()}
    # the ratings store and leaderboard the app imports live in judge/
    judge = {p.name for p in (bundle / "judge").iterdir()}
    assert {"ratings.py", "export.py", "sync.py", "leaderboard.py", "outliers.py"} <= judge
    assert not (bundle / "tests").exists() and not (bundle / "trainer").exists() and not (bundle / "corpus").exists()
    for name in ("pix2pix", "unet"):
        assert {p.name for p in (bundle / "weights" / name).iterdir()} == {
            "config.json",
            "model.safetensors",
            "README.md",
        }
    served = yaml.safe_load((bundle / "space" / "models.yaml").read_text())["models"]
    assert served == [
        {"name": "pix2pix", "source": "weights/pix2pix"},
        {"name": "unet", "source": "weights/unet"},
        {"name": "community", "source": "someone/colorizer", "revision": "v2"},
    ]
    assert _front_matter((bundle / "README.md").read_text())["models"] == ["someone/colorizer"]
    requirements = (bundle / "requirements.txt").read_text()
    assert "gradio==6.31.0" in requirements and "torch==2.13.0" in requirements
    assert not any(tool in requirements for tool in ("pytest", "playwright", "ruff", "torchvision"))


def test_missing_local_model_fails_with_a_sentence_and_writes_nothing(tmp_path: Path, capsys) -> None:
    config = tmp_path / "models.yaml"
    config.write_text("models:\n  - name: future\n    source: weights/not_trained_yet\n")
    bundle = tmp_path / "bundle"
    assert deploy.main(["--space_id", "me/colorlab", "--dry_run", str(bundle), "--models", str(config)]) == 1
    assert "weights/not_trained_yet does not exist" in capsys.readouterr().err
    assert not bundle.exists()


def test_upload_creates_the_space_and_sends_the_bundle(tmp_path: Path) -> None:
    sent: dict[str, set[str]] = {}

    def record_upload(*, folder_path, **kwargs):  # the bundle is a temp folder: list it while it exists
        sent["files"] = {p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file()}

    with mock.patch("space.deploy.HfApi") as api_class:
        api_class.return_value.upload_folder.side_effect = record_upload
        code = deploy.main(
            ["--space_id", "me/colorlab", "--models", str(_models_config(tmp_path, hub=False)), "--token", "hf_x"]
        )
    assert code == 0
    api_class.assert_called_once_with(token="hf_x")
    api = api_class.return_value
    api.create_repo.assert_called_once_with(
        "me/colorlab", repo_type="space", space_sdk="gradio", private=False, exist_ok=True
    )
    kwargs = api.upload_folder.call_args.kwargs
    assert kwargs["repo_id"] == "me/colorlab" and kwargs["repo_type"] == "space"
    assert kwargs["ignore_patterns"] == deploy.IGNORE_PATTERNS and "weights/**" in kwargs["delete_patterns"]
    assert {
        "app.py",
        "README.md",
        "requirements.txt",
        "space/models.yaml",
        "weights/pix2pix/model.safetensors",
    } <= sent["files"]


def test_the_dry_run_bundle_serves_the_app_on_its_own(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    assert (
        deploy.main(
            [
                "--space_id",
                "me/colorlab",
                "--dry_run",
                str(bundle),
                "--models",
                str(_models_config(tmp_path, hub=False)),
            ]
        )
        == 0
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLORLAB_", "PYTHONPATH"))}
    env.update(
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        COLORLAB_DATA_DIR=str(tmp_path / "data"),
        PYTHONUNBUFFERED="1",  # the "Running on local URL" line must reach the log file before we wait for it
    )
    log = tmp_path / "app.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "app.py"], cwd=bundle, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 120
        while f"Running on local URL:  {url}".rstrip("/") not in log.read_text():
            assert server.poll() is None, f"the bundled app exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the bundled app did not start:\n{log.read_text()}"
            time.sleep(0.2)
        upload = tmp_path / "gray.png"
        Image.new("L", (80, 60), 90).save(upload)
        client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
        status, header, _slider, png, *_ = client.predict(
            handle_file(str(upload)), ["pix2pix"], 64, 1.0, api_name="/colorize"
        )
        assert "80×60" in status and header.startswith("**pix2pix**")
        assert Image.open(png).size == (80, 60)
        assert "untrained" not in log.read_text()  # it served the bundled weights, not the fallback
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize("space_id", ["colorlab", "me/color lab", "../x/y"])
def test_bad_space_ids_are_refused(space_id: str, capsys) -> None:
    assert deploy.main(["--space_id", space_id, "--dry_run", "/nonexistent"]) == 2
    assert "user/name" in capsys.readouterr().err
