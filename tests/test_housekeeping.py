"""Leftovers: output folders of killed app processes are pruned at start; the suite's temporary files stay in
pytest's folder; CLI outputs honour the umask."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from space.outputs import OUTPUTS_PREFIX, OutputFolder, prune_dead_output_folders


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid  # exited and reaped: no process has this id (until the OS reuses it)


def test_only_the_folders_of_dead_processes_are_pruned(tmp_path: Path) -> None:
    dead = tmp_path / f"{OUTPUTS_PREFIX}{_dead_pid()}-abc"
    mine = tmp_path / f"{OUTPUTS_PREFIX}{os.getpid()}-def"
    alive = tmp_path / f"{OUTPUTS_PREFIX}{os.getppid()}-ghi"
    legacy = tmp_path / f"{OUTPUTS_PREFIX}k3j4h5"  # an older release's name: no process id, so not ours to judge
    for folder in (dead, mine, alive, legacy):
        (folder / "0123").mkdir(parents=True)
    assert prune_dead_output_folders(tmp_path) == [dead]
    assert not dead.exists() and mine.exists() and alive.exists() and legacy.exists()


def test_the_app_output_folder_prunes_at_start_and_names_its_process(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    killed = tmp_path / f"{OUTPUTS_PREFIX}{_dead_pid()}-xyz"
    (killed / "examples").mkdir(parents=True)
    outputs = OutputFolder()
    assert not killed.exists()
    assert outputs.root.parent == tmp_path and outputs.root.name.startswith(f"{OUTPUTS_PREFIX}{os.getpid()}-")


def test_the_session_keeps_temporary_files_inside_pytests_folder(tmp_path_factory) -> None:
    base = tmp_path_factory.getbasetemp()
    assert Path(tempfile.gettempdir()).is_relative_to(base)
    assert Path(os.environ["GRADIO_TEMP_DIR"]).is_relative_to(base)
    assert Path(tempfile.mkdtemp()).is_relative_to(base)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_cli_outputs_honour_the_umask(tmp_path: Path, tiny_model_dir: Path, photo, umask: int, mode: int) -> None:
    from models.colorize import main

    photo("camera", 48).save(tmp_path / "in.png")
    previous = os.umask(umask)
    try:
        assert main(["--model", str(tiny_model_dir), str(tmp_path / "in.png"), "--out", str(tmp_path / "out")]) == 0
    finally:
        os.umask(previous)
    [written] = (tmp_path / "out").iterdir()
    assert written.stat().st_mode & 0o777 == mode
