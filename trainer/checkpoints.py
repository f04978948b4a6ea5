"""Training state and crash-safe checkpoints.

A checkpoint is `output_dir/checkpoint-<step>/`, written by `accelerator.save_state` into a
`.tmp` folder, marked complete, then renamed into place. A process killed mid-write leaves only a
`.tmp` folder, which `find_latest_checkpoint` never picks and the next save removes.
`TrainingState` is registered with accelerate, so step, data position, early-stopping bookkeeping
and loss history are restored together with models, optimizers, schedulers and RNG states.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

COMPLETE_MARKER = "checkpoint_complete"
_CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class TrainingState:
    global_step: int = 0  # optimizer steps taken
    epoch: int = 0
    batches_seen_in_epoch: int = 0  # data position inside `epoch`, in (micro-)batches
    images_seen: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    validations_without_improvement: int = 0
    consecutive_nonfinite_steps: int = 0
    skipped_corrupt: list[int] = field(default_factory=list)  # distinct dataset indices
    skipped_grayscale: list[int] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)  # logged losses/metrics per step

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def note_skipped(self, corrupt: list[int], grayscale: list[int]) -> None:
        self.skipped_corrupt = sorted(set(self.skipped_corrupt) | set(corrupt))
        self.skipped_grayscale = sorted(set(self.skipped_grayscale) | set(grayscale))


def checkpoint_path(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / f"checkpoint-{step}"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _CHECKPOINT_PATTERN.match(child.name)
        if match and child.is_dir() and (child / COMPLETE_MARKER).is_file():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def find_latest_checkpoint(output_dir: str | Path) -> Path | None:
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[-1] if checkpoints else None


def resolve_resume_path(resume_from: str, output_dir: str | Path) -> Path | None:
    """'latest' -> newest complete checkpoint (None if there is none yet); otherwise a checked path."""
    if resume_from == "latest":
        return find_latest_checkpoint(output_dir)
    path = Path(resume_from)
    if not path.is_dir():
        raise ValueError(
            f"--resume_from_checkpoint {resume_from} does not exist; use 'latest' or a checkpoint folder."
        )
    if not (path / COMPLETE_MARKER).is_file():
        raise ValueError(f"{path} is an incomplete checkpoint (interrupted while saving); resume from an earlier one.")
    return path


def save_checkpoint(accelerator: Any, output_dir: str | Path, step: int, *, total_limit: int | None) -> Path | None:
    """Atomically save accelerate state as checkpoint-<step>; prune the oldest beyond `total_limit`."""
    final = checkpoint_path(output_dir, step)
    staging = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        for stale in Path(output_dir).glob("checkpoint-*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))  # every rank writes its RNG state; the main rank writes the rest
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return None
    (staging / COMPLETE_MARKER).write_text(f"{step}\n")
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    if total_limit is not None and total_limit > 0:
        for old in list_checkpoints(output_dir)[:-total_limit]:
            shutil.rmtree(old, ignore_errors=True)
    return final
