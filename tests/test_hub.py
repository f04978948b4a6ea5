"""Hub format: save/load round trips, model cards, strict safetensors-only loading, atomic saves, clear errors."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file, save_file

from models.hub import load_colorizer, load_model, resolve_model_folder, save_model_atomically
from models.hub_files import CONFIG_NAME, WEIGHTS_NAME
from models.pipeline import Colorizer
from models.registry import create_model, list_models


def _outputs(model: torch.nn.Module, side: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    l_norm = torch.rand(2, 1, side, side, generator=generator) * 2 - 1
    with torch.inference_mode():
        return model.eval()(l_norm)


@pytest.mark.parametrize("name", list_models("*tiny"))
def test_save_load_round_trip_gives_identical_outputs(tmp_path, name):
    model = create_model(name).eval()
    model.save_pretrained(tmp_path / name)
    assert {p.name for p in (tmp_path / name).iterdir()} == {CONFIG_NAME, WEIGHTS_NAME, "README.md"}
    loaded = load_model(tmp_path / name)
    assert type(loaded) is type(model)
    assert not loaded.training  # ready for inference
    assert torch.equal(_outputs(loaded), _outputs(model))


def test_fp16_save_halves_the_file_and_loads_the_rounded_weights(tmp_path):
    model = create_model("unet_tiny").eval()
    model.save_pretrained(tmp_path / "fp32")
    model.save_pretrained(tmp_path / "fp16", dtype=torch.float16)
    stored = load_file(str(tmp_path / "fp16" / WEIGHTS_NAME))
    assert all(t.dtype == torch.float16 for t in stored.values() if t.is_floating_point())
    assert (tmp_path / "fp16" / WEIGHTS_NAME).stat().st_size < 0.6 * (tmp_path / "fp32" / WEIGHTS_NAME).stat().st_size
    loaded = load_model(tmp_path / "fp16")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())  # cast back for CPU inference
    rounded = create_model("unet_tiny")
    rounded.load_state_dict(
        {k: v.half().float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    )
    assert torch.equal(_outputs(loaded), _outputs(rounded))


def test_config_and_model_card_describe_the_model(tmp_path, tiny_model):
    tiny_model.card_data.update(dataset="user/photos", steps=10, command="python trainer/train.py --config tiny")
    tiny_model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / CONFIG_NAME).read_text())
    assert config["architecture"] == "UNetGenerator"
    assert config["depth"] == 4 and config["base_width"] == 8
    card = ModelCard.load(tmp_path / "m" / "README.md")
    assert card.data.library_name == "colorlab"
    assert card.data.license == "apache-2.0"
    assert card.data.pipeline_tag == "image-to-image"
    assert {"colorlab", "image-colorization", "UNetGenerator"} <= set(card.data.tags)
    assert card.data.datasets == ["user/photos"]
    assert "class: `UNetGenerator`" in card.text
    assert f"parameters: {tiny_model.num_parameters():,}" in card.text
    assert "python trainer/train.py --config tiny" in card.text


def test_load_colorizer_from_a_folder_carries_name_and_card(tiny_model_dir):
    colorizer = load_colorizer(tiny_model_dir)
    assert isinstance(colorizer, Colorizer)
    assert colorizer.name == "tiny-colorizer"
    assert "library_name: colorlab" in colorizer.card
    assert load_colorizer(str(tiny_model_dir), name="shown").name == "shown"


def _rewrite_weights(folder: Path, edit) -> None:
    state = load_file(str(folder / WEIGHTS_NAME))
    save_file(edit(state), str(folder / WEIGHTS_NAME))


def test_missing_tensor_is_rejected(tiny_model_dir):
    _rewrite_weights(tiny_model_dir, lambda state: {k: v for k, v in list(state.items())[1:]})
    with pytest.raises(ValueError, match=r"does not match UNetGenerator: missing \['"):
        load_colorizer(tiny_model_dir)


def test_extra_tensor_is_rejected(tiny_model_dir):
    _rewrite_weights(tiny_model_dir, lambda state: {**state, "head.extra.weight": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"unexpected \['head.extra.weight'\]"):
        load_colorizer(tiny_model_dir)


def test_wrong_shape_is_rejected(tiny_model_dir):
    config = json.loads((tiny_model_dir / CONFIG_NAME).read_text())
    (tiny_model_dir / CONFIG_NAME).write_text(json.dumps({**config, "base_width": 4}))
    with pytest.raises(ValueError, match="wrong shape"):
        load_colorizer(tiny_model_dir)


def test_folder_without_safetensors_is_rejected(tiny_model_dir):
    (tiny_model_dir / WEIGHTS_NAME).unlink()
    with pytest.raises(ValueError, match=f"no {WEIGHTS_NAME}"):
        load_colorizer(tiny_model_dir)


class _Tripwire:
    """Unpickling this writes a marker file: proof that a loader executed a pickle."""

    marker = ""

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pytorch_bin_is_never_unpickled(tiny_model_dir, tmp_path):
    marker = tmp_path / "unpickled"
    tripwire = _Tripwire()
    tripwire.marker = str(marker)
    (tiny_model_dir / "pytorch_model.bin").write_bytes(pickle.dumps({"state": tripwire}))
    (tiny_model_dir / WEIGHTS_NAME).unlink()
    with pytest.raises(ValueError, match="safetensors weights only, never pickles"):
        load_colorizer(tiny_model_dir)
    assert not marker.exists()


@pytest.mark.parametrize(
    "config", [{"model_type": "bert", "hidden_size": 8}, {"architecture": "TransformerXL"}], ids=["foreign", "unknown"]
)
def test_folder_that_is_not_a_colorlab_model_is_rejected(tiny_model_dir, config):
    (tiny_model_dir / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"not a ColorLab model|Unknown ColorLab architecture 'TransformerXL'"):
        load_colorizer(tiny_model_dir)


def test_folder_without_config_or_with_broken_config_is_rejected(tiny_model_dir, tmp_path):
    (tiny_model_dir / CONFIG_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_colorizer(tiny_model_dir)
    (tmp_path / "photos").mkdir()
    with pytest.raises(ValueError, match=r"has no config\.json, so it is not a saved ColorLab model"):
        load_colorizer(tmp_path / "photos")


def test_sources_that_are_neither_folders_nor_repo_ids_are_rejected(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="is a file; a colorizer is a folder"):
        resolve_model_folder(tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="neither a local model folder nor a Hub repo id"):
        load_colorizer(str(tmp_path / "missing" / "deeper" / "folder"))


def test_hub_repo_id_offline_fails_with_a_sentence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so "colorlab-tests/absent" is not a local folder
    with pytest.raises(ValueError, match=r"Could not download 'colorlab-tests/absent'.*pass a local model folder"):
        load_colorizer("colorlab-tests/absent", revision="v1")


def test_save_model_atomically_replaces_and_keeps_extra_files(tmp_path):
    folder = tmp_path / "weights" / "tiny"
    first = create_model("simple_cnn_tiny")
    save_model_atomically(first, folder)
    (folder / "samples.png").write_bytes(b"png bytes")
    second = create_model("simple_cnn_tiny")
    save_model_atomically(second, folder)
    assert (folder / "samples.png").read_bytes() == b"png bytes"
    assert torch.equal(_outputs(load_model(folder)), _outputs(second))
    assert sorted(p.name for p in folder.parent.iterdir()) == ["tiny"]  # no staging folders left behind


def test_crash_while_saving_keeps_the_previous_model(tmp_path, monkeypatch):
    folder = tmp_path / "tiny"
    previous = create_model("simple_cnn_tiny")
    save_model_atomically(previous, folder)
    replacement = create_model("simple_cnn_tiny")

    def crash_halfway(directory, **kwargs):
        Path(directory, WEIGHTS_NAME).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(replacement, "save_pretrained", crash_halfway)
    with pytest.raises(OSError, match="disk full"):
        save_model_atomically(replacement, folder)
    assert torch.equal(_outputs(load_model(folder)), _outputs(previous))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]


def test_saved_folder_can_be_copied_and_loaded_elsewhere(tiny_model_dir, tmp_path):
    copy = shutil.copytree(tiny_model_dir, tmp_path / "elsewhere" / "copy")
    assert torch.equal(_outputs(load_model(copy)), _outputs(load_model(tiny_model_dir)))
