"""The interface every ColorLab network shares: normalised L (B, 1, H, W) in, normalised ab (B, 2, H, W) out.

Networks are `torch.nn.Module` + `huggingface_hub.PyTorchModelHubMixin`, so `save_pretrained` /
`from_pretrained` / `push_to_hub` work as on the Hub. The saved `config.json` holds the constructor
arguments plus an `architecture` key naming the class, which is how `models.hub.load_colorizer`
rebuilds the right network. Loading is strict and safetensors-only (see `_from_pretrained`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from huggingface_hub import ModelCard, PyTorchModelHubMixin
from safetensors.torch import load_file, save_file
from torch import nn

from models.fileperm import public_mode
from models.hub_files import WEIGHTS_NAME, download_model_folder, read_config

ARCHITECTURE_KEY = "architecture"
# config.json's block of facts that are not constructor arguments: native working size, training facts (the card's
# source), the dtype the weights are stored in. It travels with the weights, so a from_pretrained -> save_pretrained
# round trip keeps the card, the dtype and the size the app should serve the model at.
COLORLAB_KEY = "colorlab"
# A hint-conditioned network (constructor argument `hints=True`) takes, beside L, a hint map of three channels:
# the hinted a and b (normalised like the network's output) and a mask that is 1 where a hint was given. An all-zero
# map means "no hints", so the same network colorizes automatically too (Zhang et al. 2017).
HINT_CHANNELS = 3
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}

# Two tables a network enters by being defined: its class by name (the `architecture` key of config.json) and its
# variant functions (`@register_model`). models.registry, which imports every built-in network module, reads them.
ARCHITECTURES: dict[str, type[ColorizationNet]] = {}
ModelFactory = Callable[..., "ColorizationNet"]
MODEL_FACTORIES: dict[str, ModelFactory] = {}
# Renders README.md on save (the card template sits above the networks, in models.model_card); models.registry
# installs it, and every way to a saved network (create_model, models.hub, the trainer) imports the registry.
CardRenderer = Callable[["ColorizationNet"], ModelCard]
_card_renderer: CardRenderer | None = None


def register_model(factory: ModelFactory) -> ModelFactory:
    """Decorator: register `factory` under its function name (timm-style; see models.registry)."""
    name = factory.__name__
    if name in MODEL_FACTORIES:
        raise ValueError(f"A model named '{name}' is already registered; choose another function name.")
    MODEL_FACTORIES[name] = factory
    return factory


def use_card_renderer(renderer: CardRenderer) -> None:
    """Install the function that writes a network's model card (`render_model_card(model) -> ModelCard`)."""
    global _card_renderer
    _card_renderer = renderer


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
        ARCHITECTURES[cls.__name__] = cls

    def __init__(self, *, hints: bool = False) -> None:
        super().__init__()
        self.card_data = {}
        #: the `colorlab` config block without its "training" entry (that is `card_data`)
        self.colorlab: dict[str, Any] = {}
        #: whether the network takes a hint map beside L (its first layer then has 1 + HINT_CHANNELS inputs)
        self.takes_hints = bool(hints)

    @property
    def input_channels(self) -> int:
        """Channels of the first layer's input: L, plus the hint map for a hint-conditioned network."""
        return 1 + HINT_CHANNELS if self.takes_hints else 1

    def network_input(self, l_norm: torch.Tensor, hint_map: torch.Tensor | None) -> torch.Tensor:
        """Check L (and the hint map) and return the first layer's input: L, or L and the map (zeros: no hints)."""
        self.check_input(l_norm)
        if not self.takes_hints:
            if hint_map is not None:
                raise ValueError(
                    f"{type(self).__name__} was not trained to take colour hints; colorize without hints or choose "
                    "a hint model (one built with hints=True, e.g. weights/colour_hints)."
                )
            return l_norm
        if hint_map is None:
            hint_map = l_norm.new_zeros(l_norm.shape[0], HINT_CHANNELS, *l_norm.shape[-2:])
        if hint_map.shape != (l_norm.shape[0], HINT_CHANNELS, *l_norm.shape[-2:]):
            raise ValueError(
                f"The hint map must have shape (B, {HINT_CHANNELS}, H, W) matching L {tuple(l_norm.shape)}, got "
                f"{tuple(hint_map.shape)}; build it with models.hints.encode_hints."
            )
        return torch.cat([l_norm, hint_map.to(l_norm)], dim=1)

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

    def constructor_arguments(self) -> dict[str, Any]:
        """The arguments this network was built with (what rebuilds it: `type(net)(**net.constructor_arguments())`),
        without the colorlab block of facts."""
        return {k: v for k, v in getattr(self, "_hub_mixin_config", {}).items() if k != COLORLAB_KEY}

    def hub_config(self) -> dict[str, Any]:
        config = {ARCHITECTURE_KEY: type(self).__name__, **self.constructor_arguments()}
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
        # safetensors writes 0600; a Space or another user serving the folder must be able to read the weights
        os.chmod(save_directory / WEIGHTS_NAME, public_mode())

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        if _card_renderer is None:  # a network class used without models.registry: the Hub mixin's plain card
            return super().generate_model_card(*args, **kwargs)
        return _card_renderer(self)

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
            model_id = str(download_model_folder(model_id, revision=revision))  # weights from the config's revision
        model_kwargs.pop(COLORLAB_KEY, None)
        model = cls(**model_kwargs)
        load_weights_strict(model, Path(model_id) / WEIGHTS_NAME)
        model.apply_colorlab_block(read_config(Path(model_id)).get(COLORLAB_KEY))
        return model.to(map_location).eval()


def check_tensor_shapes(
    found: Mapping[str, Sequence[int]],
    expected: Mapping[str, Sequence[int]],
    *,
    where: str,
    network: str,
    fix: str,
    shape_fix: str | None = None,
) -> None:
    """Refuse weights whose tensor names or shapes differ from the network's: the one strict check behind every
    weights load (ColorLab folders, their safetensors headers, the pretrained evaluation networks)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{where} does not match {network}: missing {missing[:5]}, unexpected {unexpected[:5]}; {fix}."
        )
    wrong = [name for name, shape in found.items() if tuple(shape) != tuple(expected[name])]
    if wrong:
        raise ValueError(f"{where} has tensors of the wrong shape ({wrong[:5]}); {shape_fix or fix}.")


def load_weights_strict(model: nn.Module, weights_file: Path) -> None:
    """Load safetensors into `model`, refusing any missing or unexpected key (no silent partial loads)."""
    if not weights_file.is_file():
        raise ValueError(
            f"{weights_file} is missing; a ColorLab model folder needs {WEIGHTS_NAME} (pickles are not read)."
        )
    state = load_file(str(weights_file))
    check_tensor_shapes(
        {name: tensor.shape for name, tensor in state.items()},
        {name: tensor.shape for name, tensor in model.state_dict().items()},
        where=str(weights_file),
        network=type(model).__name__,
        fix="the weights were saved by a different architecture or config",
        shape_fix="check config.json",
    )
    model.load_state_dict(state, strict=True)  # copies and casts fp16 files into the fp32 parameters
