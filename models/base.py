"""The interface every ColorLab network shares: normalised L (B, 1, H, W) in, normalised ab (B, 2, H, W) out.

Networks are `torch.nn.Module` + `huggingface_hub.PyTorchModelHubMixin`, so `save_pretrained` /
`from_pretrained` / `push_to_hub` work as on the Hub. The saved `config.json` holds the constructor
arguments plus an `architecture` key naming the class, which is how `models.hub.load_colorizer`
rebuilds the right network. Loading is strict and safetensors-only (see `_from_pretrained`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import torch
from huggingface_hub import ModelCard, PyTorchModelHubMixin
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ARCHITECTURE_KEY = "architecture"
# config.json's block of facts that are not constructor arguments: native working size, training facts (the card's
# source), the dtype the weights are stored in. It travels with the weights, so a from_pretrained -> save_pretrained
# round trip keeps the card, the dtype and the size the app should serve the model at.
COLORLAB_KEY = "colorlab"
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}

_ARCHITECTURES: dict[str, type[ColorizationNet]] = {}


def architecture_class(name: str) -> type[ColorizationNet]:
    """The network class saved under `name` in a config.json."""
    from models.registry import _ensure_builtin_models  # local import: the registry imports this module

    _ensure_builtin_models()  # classes register on import; a fresh process (CLI, app) has imported none yet
    if name not in _ARCHITECTURES:
        known = ", ".join(sorted(_ARCHITECTURES))
        raise ValueError(f"Unknown ColorLab architecture '{name}'; this version knows: {known}.")
    return _ARCHITECTURES[name]


class ColorizationNet(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="colorlab",
    tags=["colorlab", "image-colorization", "image-to-image"],
    license="apache-2.0",
    pipeline_tag="image-to-image",
):
    """Base class: subclasses set `size_multiple` and implement `forward(l_norm) -> ab_norm`."""

    description: ClassVar[str] = "a colorization network"
    #: metadata the trainer adds to the model card (dataset, steps, metrics, command)
    card_data: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _ARCHITECTURES[cls.__name__] = cls

    def __init__(self) -> None:
        super().__init__()
        self.card_data = {}
        #: the `colorlab` config block without its "training" entry (that is `card_data`)
        self.colorlab: dict[str, Any] = {}

    @property
    def native_working_size(self) -> int | None:
        """The working size this network was trained for (None: unknown, e.g. an untrained network)."""
        size = self.colorlab.get("native_working_size")
        return int(size) if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None

    def colorlab_block(self) -> dict[str, Any]:
        block = dict(self.colorlab)
        if self.card_data:
            block["training"] = self.card_data
        return block

    def apply_colorlab_block(self, block: Any) -> None:
        """Restore `colorlab` and `card_data` from a saved config's block (ignored unless it is an object)."""
        if not isinstance(block, dict):
            return
        block = dict(block)
        training = block.pop("training", {})
        self.colorlab = block
        self.card_data = dict(training) if isinstance(training, dict) else {}

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this (2 ** number of downsamplings)."""
        return 1

    def check_input(self, l_norm: torch.Tensor) -> None:
        if l_norm.dim() != 4 or l_norm.shape[1] != 1:
            raise ValueError(
                f"{type(self).__name__} expects normalised L of shape (B, 1, H, W), got {tuple(l_norm.shape)}; "
                "convert images with models.color.rgb_to_model_space."
            )
        height, width = l_norm.shape[-2:]
        multiple = self.size_multiple
        if height % multiple or width % multiple:
            raise ValueError(
                f"{type(self).__name__} needs height and width divisible by {multiple} "
                f"(it downsamples {multiple.bit_length() - 1} times), got {height}x{width}; "
                f"resize or crop to a multiple of {multiple}, e.g. {max(multiple, height // multiple * multiple)}."
            )

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def hub_config(self) -> dict[str, Any]:
        config = {k: v for k, v in getattr(self, "_hub_mixin_config", {}).items() if k != COLORLAB_KEY}
        config = {ARCHITECTURE_KEY: type(self).__name__, **config}
        block = self.colorlab_block()
        if block:
            config[COLORLAB_KEY] = block
        return config

    # --- saving ---------------------------------------------------------------------------------
    def save_pretrained(  # type: ignore[override]
        self, save_directory: str | Path, *, dtype: torch.dtype | None = None, **kwargs: Any
    ) -> str | None:
        """Write config.json, model.safetensors (optionally cast, e.g. fp16 to halve the size) and README.md.

        Without `dtype`, the weights keep the dtype they were stored in when loaded (recorded in the colorlab
        block), so re-saving a bundled fp16 model does not double its size.
        """
        if dtype is None:
            dtype = _DTYPES.get(str(self.colorlab.get("weights_dtype")))
        if dtype is not None:
            self.colorlab["weights_dtype"] = str(dtype).removeprefix("torch.")
        self._save_dtype = dtype
        try:
            return super().save_pretrained(save_directory, config=self.hub_config(), **kwargs)
        finally:
            del self._save_dtype

    def _save_pretrained(self, save_directory: Path) -> None:
        dtype = getattr(self, "_save_dtype", None)
        state = {k: (v.to(dtype) if dtype and v.is_floating_point() else v) for k, v in self.state_dict().items()}
        state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
        save_file(state, str(save_directory / WEIGHTS_NAME), metadata={"format": "pt"})

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        from models.model_card import render_model_card  # local import: keeps the card template out of the net

        return render_model_card(self)

    # --- loading --------------------------------------------------------------------------------
    @classmethod
    def _from_pretrained(  # type: ignore[override]
        cls, *, model_id: str, map_location: str = "cpu", **model_kwargs: Any
    ) -> ColorizationNet:
        """Strict, safetensors-only loading: a missing or extra tensor is an error, pickles are never read."""
        revision = model_kwargs.pop("revision", None)
        for hub_arg in ("cache_dir", "force_download", "local_files_only", "token", "strict"):
            model_kwargs.pop(hub_arg, None)
        if not os.path.isdir(model_id):
            from models.hub import download_model_folder

            model_id = str(download_model_folder(model_id, revision=revision))  # weights from the config's revision
        model_kwargs.pop(COLORLAB_KEY, None)
        model = cls(**model_kwargs)
        load_weights_strict(model, Path(model_id) / WEIGHTS_NAME)
        model.apply_colorlab_block(read_config(Path(model_id)).get(COLORLAB_KEY))
        return model.to(map_location).eval()


def load_weights_strict(model: nn.Module, weights_file: Path) -> None:
    """Load safetensors into `model`, refusing any missing or unexpected key (no silent partial loads)."""
    if not weights_file.is_file():
        raise ValueError(
            f"{weights_file} is missing; a ColorLab model folder needs {WEIGHTS_NAME} (pickles are not read)."
        )
    state = load_file(str(weights_file))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{weights_file} does not match {type(model).__name__}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}; the weights were saved by a different architecture or config."
        )
    mismatched = [k for k, v in state.items() if v.shape != expected[k].shape]
    if mismatched:
        raise ValueError(f"{weights_file} has tensors of the wrong shape ({mismatched[:5]}); check config.json.")
    model.load_state_dict(state, strict=True)  # copies and casts fp16 files into the fp32 parameters


def read_config(folder: Path) -> dict[str, Any]:
    config_file = folder / CONFIG_NAME
    if not config_file.is_file():
        raise ValueError(f"{folder} has no {CONFIG_NAME}, so it is not a saved ColorLab model.")
    try:
        return json.loads(config_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_file} is not valid JSON ({error}); re-save the model.") from error
