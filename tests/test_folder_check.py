"""Hostile or broken model folders: refused with one sentence before the network is allocated (models.folder_check)."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from models.folder_check import MAX_PARAMETERS, read_safetensors_header
from models.hub import load_colorizer, load_model
from models.hub_files import CONFIG_NAME, WEIGHTS_NAME


def _edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / CONFIG_NAME).read_text())
    (folder / CONFIG_NAME).write_text(json.dumps({**config, **changes}))


def _edit_weights(folder: Path, edit) -> None:
    state = load_file(str(folder / WEIGHTS_NAME))
    save_file(edit(state), str(folder / WEIGHTS_NAME))


def _cast(dtype: torch.dtype):
    return lambda state: {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"base_width": 512}, r"parameters, above the 250 M budget"),
        ({"depth": 1000}, r"depth=1000, outside the supported range 1 to 12"),
        ({"base_width": -8}, r"base_width=-8, outside the supported range"),
        ({"base_width": "wide"}, r"base_width='wide', but it must be a whole number"),
        ({"base_width": 8.5}, r"must be a whole number"),
        ({"depth": True}, r"must be a whole number"),
        ({"dropout": "NaN"}, r"dropout='NaN', but it must be a finite number"),
        ({"norm": "layer"}, r"cannot be built \(norm must be 'batch' or 'instance'"),
        ({"architecture": 7}, r"names the architecture 7"),
        ({"in_channels": 3}, r"in_channels=3, outside the supported range 1 to 1"),
    ],
)
def test_bad_config_values_are_refused_before_allocating(tiny_model_dir, changes, message):
    _edit_config(tiny_model_dir, **changes)
    with pytest.raises(ValueError, match=message) as caught:
        load_colorizer(tiny_model_dir)
    assert str(caught.value).endswith(".") and "\n" not in str(caught.value)


def test_an_oversized_config_costs_no_memory(tiny_model_dir, monkeypatch):
    # base_width 512 at depth 5 is ~700 M parameters: the refusal must come from the meta-device count,
    # never from a real allocation. Forbid real parameter storage outright to prove it.
    _edit_config(tiny_model_dir, base_width=512)
    real_empty = torch.empty

    def no_big_tensors(*size, **kwargs):
        tensor = real_empty(*size, **kwargs)
        assert tensor.device.type == "meta" or tensor.numel() < 10_000_000, "a large tensor was allocated"
        return tensor

    monkeypatch.setattr(torch, "empty", no_big_tensors)
    with pytest.raises(ValueError, match="budget"):
        load_model(tiny_model_dir)
    assert MAX_PARAMETERS < 700_000_000


def test_a_config_that_is_a_json_list_is_refused(tiny_model_dir):
    (tiny_model_dir / CONFIG_NAME).write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"holds a JSON list, not an object of settings"):
        load_colorizer(tiny_model_dir)


def test_unknown_keys_and_a_colorlab_block_are_ignored(tiny_model_dir):
    _edit_config(tiny_model_dir, colorlab={"native_working_size": 128, "sizes": [128, 256]}, future_key="x")
    assert load_model(tiny_model_dir).num_parameters() > 0


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\x01", b"garbage that is not safetensors at all", struct.pack("<Q", 12) + b"[1, 2, 3, 4]"],
    ids=["empty", "short", "text", "json-list"],
)
def test_corrupt_weights_are_refused(tiny_model_dir, content):
    (tiny_model_dir / WEIGHTS_NAME).write_bytes(content)
    with pytest.raises(ValueError, match="is not a safetensors file"):
        load_colorizer(tiny_model_dir)


def test_a_pickle_named_safetensors_is_refused_and_never_unpickled(tiny_model_dir, tmp_path):
    marker = tmp_path / "unpickled"

    class Tripwire:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (tiny_model_dir / WEIGHTS_NAME).write_bytes(pickle.dumps({"state": Tripwire()}))
    with pytest.raises(ValueError, match="is not a safetensors file"):
        load_colorizer(tiny_model_dir)
    assert not marker.exists()


def test_truncated_weights_are_refused(tiny_model_dir):
    data = (tiny_model_dir / WEIGHTS_NAME).read_bytes()
    (tiny_model_dir / WEIGHTS_NAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_colorizer(tiny_model_dir)


def test_int8_weights_are_refused(tiny_model_dir):
    _edit_weights(tiny_model_dir, _cast(torch.int8))
    with pytest.raises(ValueError, match=r"as I8, but ColorLab weights must be float16, bfloat16 or float32"):
        load_colorizer(tiny_model_dir)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_float_weights_of_every_accepted_type_load(tiny_model_dir, dtype):
    _edit_weights(tiny_model_dir, _cast(dtype))
    header = read_safetensors_header(tiny_model_dir / WEIGHTS_NAME)
    stored = header["model.model.0.weight"]["dtype"]
    assert {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32}[stored] == dtype
    assert load_model(tiny_model_dir).num_parameters() > 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tiny_model_dir, bad):
    def poison(state):
        name = next(k for k, v in state.items() if v.is_floating_point())
        state[name] = state[name].clone()
        state[name].view(-1)[0] = bad
        return state

    _edit_weights(tiny_model_dir, poison)
    with pytest.raises(ValueError, match="holds NaN or infinite values"):
        load_colorizer(tiny_model_dir)


def test_cli_prints_one_sentence_for_a_hostile_folder(tiny_model_dir, tmp_path, capsys, photo):
    from models.colorize import main

    _edit_config(tiny_model_dir, depth=1000)
    photo("camera", 64).save(tmp_path / "in.png")
    assert main(["--model", str(tiny_model_dir), str(tmp_path / "in.png"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "outside the supported range" in err and "Traceback" not in err


def test_trainer_refuses_a_hostile_init_folder_with_one_sentence(tiny_model_dir, tmp_path, capsys):
    from train_support import run_cli

    _edit_config(tiny_model_dir, base_width=512)
    argv = ["--init_from", str(tiny_model_dir), "--dataset", str(tmp_path / "photos"), "--output_dir", str(tmp_path)]
    assert run_cli(argv) == 1
    err = capsys.readouterr().err
    assert "budget" in err and "Traceback" not in err


def test_app_lists_hostile_folders_as_failed_without_server_paths(tmp_path):
    from tests_support_models import hostile_folders

    from space.model_pool import ModelPool, ModelSpec

    specs = [ModelSpec(name, f"models/{name}") for name in hostile_folders(tmp_path / "models")]
    pool = ModelPool.load(specs, root=tmp_path)
    reasons = {failure.spec.name: failure.reason for failure in pool.failures}
    assert sorted(reasons) == sorted(spec.name for spec in specs) and pool.fallback_used
    for name, reason in reasons.items():
        assert str(tmp_path) not in reason, reason
        assert f"models/{name}" in reason and reason.endswith("."), reason
    assert "holds NaN or infinite values" in reasons["nan"]
    assert "as I8" in reasons["int8"]
