"""ONNX export (models.export): parity with PyTorch, dynamic batch and size, int8, the CLI, refusals.

.venv/bin/python -m pytest tests/test_export.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from models.export import (
    INPUT_NAME,
    PARITY_LIMIT,
    ExportError,
    export_onnx,
    load_exportable,
    main,
    onnx_session,
    parity,
)
from models.hub import load_model
from models.hub_files import DIFFUSION_MARKER
from models.registry import create_model

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

REPO_ROOT = Path(__file__).resolve().parents[1]


def _default_bundled_model() -> Path:
    """The app's default colorizer: the first entry of space/models.yaml."""
    entries = yaml.safe_load((REPO_ROOT / "space" / "models.yaml").read_text(encoding="utf-8"))["models"]
    return REPO_ROOT / entries[0]["source"]


@pytest.mark.parametrize("name", ["pix2pix_tiny", "unet_tiny"])
def test_tiny_models_export_with_dynamic_axes_and_match_pytorch(name, tmp_path):
    model = create_model(name).eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    assert parity(model, path) <= PARITY_LIMIT
    graph = onnx.load(str(path)).graph
    for value in (graph.input[0], graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        assert [d.dim_param for d in dims] == ["batch", "", "height", "width"]  # free batch, height, width
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim][1] == 1
    assert [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim][1] == 2


def test_colour_class_head_exports_and_matches_pytorch(tmp_path):
    model = create_model("unet_tiny", ab_classes=True).eval()  # softmax decoding, temperature, prior correction
    assert parity(model, export_onnx(model, tmp_path / "classes.onnx")) <= PARITY_LIMIT


@pytest.mark.slow  # a 31 MB network: about 5 s on an idle 2-core machine
def test_bundled_default_exports_within_the_parity_limit(tmp_path):
    folder = _default_bundled_model()
    model = load_model(folder).eval()
    path = export_onnx(model, tmp_path / "default.onnx")
    assert parity(model, path) <= PARITY_LIMIT  # batches 1 and 2, two shapes other than the traced one
    meta = {entry.key: entry.value for entry in onnx.load(str(path)).metadata_props}
    assert meta["colorlab.native_working_size"] == str(model.native_working_size)
    assert json.loads(meta["colorlab.config"])["architecture"] == type(model).__name__


def test_cli_writes_the_file_and_reports_parity(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "exports" / "tiny.onnx"
    assert main([str(tiny_model_dir), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "largest |Δab|" in printed
    assert onnx_session(out).run(None, {INPUT_NAME: np.zeros((2, 1, 64, 96), np.float32)})[0].shape == (2, 2, 64, 96)
    assert [p.name for p in out.parent.iterdir()] == ["tiny.onnx"]  # no staging files left behind


def test_int8_quantizes_the_convolutions_but_the_output_layer(tiny_model_dir, tmp_path, photo, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        photo(name, 96).save(photos / f"{name}.jpg")
    out = tmp_path / "tiny.int8.onnx"
    assert main([str(tiny_model_dir), "--int8", "--calibration", str(photos), "--out", str(out)]) == 0
    assert "int8 convolutions" in capsys.readouterr().out
    graph = onnx.load(str(out)).graph
    assert any(node.op_type == "QuantizeLinear" for node in graph.node)
    output_layer = [node for node in graph.node if node.op_type in ("Conv", "ConvTranspose")][-1]
    fp32_weights = {tensor.name for tensor in graph.initializer if tensor.data_type == onnx.TensorProto.FLOAT}
    assert output_layer.input[1] in fp32_weights  # the output layer reads its fp32 weights directly
    model = load_model(tiny_model_dir).eval()
    assert parity(model, out) < 0.1 * 110  # int8 moves ab a little, never wholesale


def test_diffusion_colorizers_are_refused_with_one_sentence(tmp_path, capsys):
    # the marker a saved ControlNet colorizer carries (written here: importing the diffusion code pulls in diffusers)
    folder = tmp_path / "controlnet"
    folder.mkdir()
    (folder / DIFFUSION_MARKER).write_text(json.dumps({"format": "colorlab-diffusion", "version": 1}))
    with pytest.raises(ExportError, match=r"diffusion colorizer.*cannot be exported as one ONNX network"):
        load_exportable(str(folder))
    assert main([str(folder), "--format", "onnx", "--out", str(tmp_path / "x.onnx")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1 and "Traceback" not in error
    assert not (tmp_path / "x.onnx").exists()


def test_hint_models_are_refused_rather_than_exported_without_their_hints(tmp_path, capsys):
    from models.registry import create_model

    create_model("unet_tiny", hints=True).save_pretrained(tmp_path / "hinted")
    assert main([str(tmp_path / "hinted"), "--format", "onnx", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "hint model" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_bad_inputs_get_one_sentence(tiny_model_dir, tmp_path, capsys):
    assert main([str(tmp_path / "missing"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "neither a local model folder nor a Hub repo id" in capsys.readouterr().err
    assert main([str(tiny_model_dir), "--int8", "--calibration", str(tmp_path / "none"), "--out", "x.onnx"]) == 2
    assert "--calibration" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tiny_model_dir), "--format", "tflite"])


def test_a_calibration_folder_without_readable_photos_gets_one_sentence(tiny_model_dir, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "broken.jpg").write_bytes(b"not a jpeg")  # skipped, as an unreadable file among photos is
    out = tmp_path / "x.onnx"
    assert main([str(tiny_model_dir), "--int8", "--calibration", str(folder), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error == f"error: --calibration {folder} holds no readable photos; pass a folder of a few typical photos.\n"
    assert not out.exists()


@pytest.mark.filterwarnings("ignore:Conversion from CIE-LAB")  # a random tiny model predicts some impossible colours
def test_the_model_cards_onnx_example_runs_as_written(tiny_model, tmp_path, photo, monkeypatch):
    card = str(tiny_model.generate_model_card())
    section = card.split("## Run with ONNX Runtime", 1)[1]
    command = section.split("```bash\n", 1)[1].split("\n```", 1)[0]
    code = section.split("```python\n", 1)[1].split("\n```", 1)[0]
    assert command == "colorlab-export PATH_OR_REPO_ID --format onnx --out colorizer.onnx"
    monkeypatch.chdir(tmp_path)
    tiny_model.save_pretrained(tmp_path / "tiny")
    assert main([str(tmp_path / "tiny"), *command.split()[2:]]) == 0  # the command, with the placeholder filled in
    photo("coffee", 120).save(tmp_path / "photo.jpg")
    namespace: dict = {}
    exec(compile(code, "model card", "exec"), namespace)
    rgb = namespace["rgb"]
    assert rgb.shape == (256, 256, 3) and rgb.min() >= 0 and rgb.max() <= 1
