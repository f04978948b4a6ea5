"""Uploading a trained colorizer: `--push_to_hub` and `python -m trainer.push`, with `HfApi` mocked at its boundary.

    .venv/bin/python -m pytest tests/test_push.py -q -x

The fake records the calls it gets (with the checkpoints that existed at the time, to tell "before training"
from "after"), the repo id, folder and ignore patterns, and works out which files the real `upload_folder`
would send, with huggingface_hub's own pattern filter.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
from huggingface_hub.utils import filter_repo_objects
from train_support import REPO_ROOT, make_photo_folder, run_cli, run_trainer, trainer_env

import trainer.push
from models.hub import load_model
from trainer.checkpoints import list_checkpoints
from trainer.push import IGNORE_PATTERNS, main, push_output

FINAL_MODEL_FILES = {
    "README.md",
    "config.json",
    "model.safetensors",
    "samples.png",
    "loss_curves.png",
    "example_gray.jpg",  # the card's widget example (models.widget_example)
    "example_colorized.jpg",
}


class FakeHfApi:
    """Stands in for huggingface_hub.HfApi: records calls, never touches the network."""

    instances: ClassVar[list[FakeHfApi]] = []
    failure: ClassVar[Exception | None] = None  # raised by upload_folder
    login_failure: ClassVar[Exception | None] = None  # raised by whoami
    create_failure: ClassVar[Exception | None] = None  # raised by create_repo
    watched: ClassVar[Path | None] = None  # an output folder: each call records the checkpoints it holds then
    calls: ClassVar[list[tuple[str, list[str]]]] = []

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.created: list[tuple[str, dict]] = []
        self.uploads: list[dict] = []
        FakeHfApi.instances.append(self)

    def _record(self, call: str) -> None:
        checkpoints = [p.name for p in list_checkpoints(FakeHfApi.watched)] if FakeHfApi.watched else []
        FakeHfApi.calls.append((call, checkpoints))

    def whoami(self) -> dict:
        self._record("whoami")
        if FakeHfApi.login_failure is not None:
            raise FakeHfApi.login_failure
        return {"name": "someone", "type": "user"}

    def create_repo(self, repo_id: str, **kwargs) -> str:
        self._record("create_repo")
        if FakeHfApi.create_failure is not None:
            raise FakeHfApi.create_failure
        self.created.append((repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, repo_id: str, folder_path: str, ignore_patterns: list[str], **kwargs) -> object:
        self._record("upload_folder")
        if FakeHfApi.failure is not None:
            raise FakeHfApi.failure
        root = Path(folder_path)
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        sent = set(filter_repo_objects(files, ignore_patterns=ignore_patterns))
        self.uploads.append({"repo_id": repo_id, "folder_path": folder_path, "files": sent, **kwargs})
        ignore_patterns += [".git", ".git/*"]  # the real upload_folder extends the list it is given
        return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/0123abc")


@pytest.fixture
def hub(monkeypatch) -> Iterator[type[FakeHfApi]]:
    monkeypatch.setattr(trainer.push, "HfApi", FakeHfApi)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    reset_fake_hub()
    yield FakeHfApi
    reset_fake_hub()  # other modules use the fake too (tests/test_train_controlnet.py): leave no failure set


def reset_fake_hub() -> None:
    FakeHfApi.instances, FakeHfApi.calls, FakeHfApi.watched = [], [], None
    FakeHfApi.failure = FakeHfApi.login_failure = FakeHfApi.create_failure = None


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return make_photo_folder(tmp_path_factory.mktemp("photos"))


def tiny_run(photos: Path, out: Path, *extra: str) -> list[str]:
    return ["--config", "tiny", "--dataset", str(photos), "--output_dir", str(out), "--max_train_steps", "3", *extra]


def test_push_to_hub_checks_the_login_and_creates_the_repo_before_training_then_uploads_model_and_logs(
    tmp_path, photos, hub, capsys
):
    out = tmp_path / "out"
    hub.watched = out
    argv = tiny_run(photos, out, "--push_to_hub", "--hub_model_id", "someone/tiny-colorizer", "--hub_private")
    run_trainer([*argv, "--report_to", "tensorboard"])
    assert (out / "checkpoint-3").is_dir() and (out / "best").is_dir() and (out / "validation").is_dir()
    # Login and repo before the first step (no checkpoint yet); the upload after the last.
    assert hub.calls == [
        ("whoami", []),
        ("create_repo", []),
        ("create_repo", ["checkpoint-3"]),
        ("upload_folder", ["checkpoint-3"]),
    ]
    before, after = hub.instances
    created = ("someone/tiny-colorizer", {"repo_type": "model", "private": True, "exist_ok": True})
    assert before.created == after.created == [created]
    (upload,) = after.uploads
    assert upload["repo_id"] == "someone/tiny-colorizer" and upload["repo_type"] == "model"
    assert Path(upload["folder_path"]) == out
    sent = upload["files"]
    # The model and its logs (TensorBoard events: the Hub's "Training metrics" tab); no checkpoints, validation
    # grids or best/ copy.
    assert FINAL_MODEL_FILES | {"logs/final_weights.txt"} <= sent
    assert {name for name in sent if not name.startswith("logs/")} == FINAL_MODEL_FILES
    assert any(name.startswith("logs/colorlab/") and "tfevents" in name for name in sent)
    out_text = capsys.readouterr().out
    assert "The model will be uploaded to https://huggingface.co/someone/tiny-colorizer after training" in out_text
    assert "uploaded: https://huggingface.co/someone/tiny-colorizer/commit/0123abc" in out_text


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        ("login_failure", "error: --push_to_hub: the Hub did not accept your login (PermissionError: invalid token); "
         "log in with `hf auth login`, or pass --hub_token / set HF_TOKEN, then start again (nothing was trained)."),
        ("create_failure", "error: --push_to_hub: someone cannot create or write to the model repo someone/tiny "
         "(PermissionError: invalid token); pick a --hub_model_id under your user or an organisation you may write "
         "to (nothing was trained)."),
    ],
)  # fmt: skip
def test_a_bad_login_or_repo_stops_the_run_before_training(tmp_path, photos, hub, capsys, failure, message):
    setattr(hub, failure, PermissionError("invalid token"))
    out = tmp_path / "out"
    assert run_cli(tiny_run(photos, out, "--push_to_hub", "--hub_model_id", "someone/tiny")) == 1
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [message]
    assert "Traceback" not in err
    assert not list_checkpoints(out) and not (out / "model.safetensors").exists()
    assert not any(api.uploads for api in hub.instances)


def test_failed_upload_keeps_the_model_and_prints_a_retry_command_that_works(tmp_path, photos, hub, capsys):
    out = tmp_path / "out"
    hub.failure = ConnectionError("network is unreachable")
    argv = tiny_run(photos, out, "--val_fraction", "0", "--push_to_hub", "--hub_model_id", "someone/tiny")
    assert run_cli(argv) == 1
    err = capsys.readouterr().err
    assert "error: Upload to someone/tiny failed (ConnectionError: network is unreachable)." in err
    assert f"Your model is safe in {out}" in err and "Traceback" not in err
    load_model(out)  # the trained model is intact

    hub.failure = None
    retry = re.search(r"retry with: python -m trainer\.push (.+)$", err, re.MULTILINE).group(1)
    assert main(shlex.split(retry)) == 0
    assert hub.instances[-1].uploads[0]["files"] == {
        "README.md",
        "config.json",
        "model.safetensors",
        "example_gray.jpg",  # the card's widget example, written without validation too
        "example_colorized.jpg",
        "logs/final_weights.txt",  # the logs travel with the model (tiny runs with --report_to none)
    }


def test_cli_uploads_a_saved_colorizer_folder(tiny_model_dir, hub, capsys):
    (tiny_model_dir / "checkpoint-7").mkdir()
    (tiny_model_dir / "checkpoint-7" / "optimizer.bin").write_bytes(b"state")
    (tiny_model_dir / "checkpoint-9.tmp").mkdir()
    (tiny_model_dir / "checkpoint-9.tmp" / "model.safetensors").write_bytes(b"half")
    assert main([str(tiny_model_dir), "--hub_model_id", "someone/cli-colorizer", "--hub_token", "hf_test"]) == 0
    (api,) = hub.instances
    assert api.token == "hf_test"
    assert api.created[0] == ("someone/cli-colorizer", {"repo_type": "model", "private": False, "exist_ok": True})
    assert api.uploads[0]["files"] == {"README.md", "config.json", "model.safetensors"}
    assert capsys.readouterr().out.strip() == "uploaded: https://huggingface.co/someone/cli-colorizer/commit/0123abc"


def test_repeated_uploads_do_not_change_the_ignore_patterns(tiny_model_dir, hub):
    before = list(IGNORE_PATTERNS)
    for _ in range(2):
        push_output(tiny_model_dir, "someone/colorizer")
    assert before == IGNORE_PATTERNS


@pytest.mark.parametrize(
    ("repo_id", "message"),
    [("no-slash", "is not a repo id of the form USER/NAME"), ("a/b/c", "is not a repo id of the form USER/NAME")],
)
def test_bad_repo_ids_are_refused_before_any_upload(tiny_model_dir, hub, capsys, repo_id, message):
    assert main([str(tiny_model_dir), "--hub_model_id", repo_id]) == 1
    assert message in capsys.readouterr().err
    assert not hub.instances


def test_a_folder_without_a_model_is_refused(tmp_path, hub, capsys):
    assert main([str(tmp_path), "--hub_model_id", "someone/colorizer"]) == 1
    assert "holds no trained model (config.json missing)" in capsys.readouterr().err
    assert not hub.instances


def test_python_dash_m_trainer_push_reports_one_sentence(tmp_path):
    # Fails before any HfApi call, so it runs for real in a subprocess.
    result = subprocess.run(
        [sys.executable, "-m", "trainer.push", str(tmp_path), "--hub_model_id", "someone/colorizer"],
        env=trainer_env(tmp_path / "hf-home", PYTHONPATH=str(REPO_ROOT)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path} holds no trained model (config.json missing); train first or pass the right folder."
    ]
