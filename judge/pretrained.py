"""Pretrained weights for the evaluation networks (AlexNet for LPIPS, Inception for FID): find, download, load.

    state = load_pretrained_state(ALEXNET, path=args.lpips_weights, download=args.download_weights)

A metric that needs ImageNet weights is computed only from real weights: a file the user passes, a copy
already in the torch hub cache, or (with `download=True`) a fresh download checked against its published
hash. Otherwise `WeightsUnavailable` carries the sentence the report prints instead of a number; there is
deliberately no path that falls back to random weights.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from models.base import check_tensor_shapes


class WeightsUnavailable(Exception):
    """The metric cannot be computed honestly; `str(error)` is the report's "unavailable: ..." sentence."""


@dataclass(frozen=True)
class PretrainedWeights:
    """Where a standard checkpoint comes from and how the command line names it."""

    what: str  # "AlexNet", for sentences
    flag: str  # the command-line option that passes a local file
    url: str
    hash_prefix: str  # the sha256 prefix in the published file name (torch.hub convention)

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    def cached_file(self) -> Path:
        return Path(torch.hub.get_dir()) / "checkpoints" / self.filename


# torchvision's ImageNet AlexNet (the trunk the lpips package was calibrated on).
ALEXNET = PretrainedWeights(
    what="AlexNet",
    flag="--lpips_weights",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    hash_prefix="7be5be79",
)
# The TensorFlow FID Inception (2015-12-05) ported to PyTorch: the weights every published FID uses.
FID_INCEPTION = PretrainedWeights(
    what="Inception",
    flag="--inception_weights",
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    hash_prefix="6726825d",
)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors file or a torch state-dict pickle (read with weights_only=True: no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Weights file {path} does not exist; pass the path of a downloaded state-dict file.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or non-tensor pickles
        raise ValueError(
            f"{path} is not a readable torch state dict ({type(error).__name__}); re-download it."
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"{path} does not hold a plain state dict of tensors; save it with torch.save(model.state_dict())."
        )
    return state


def resolve_weights_file(
    weights: PretrainedWeights, path: str | os.PathLike[str] | None = None, *, download: bool = False
) -> Path:
    """The local file for `weights`: the given path, else the torch hub cache, else a verified download."""
    if path is not None:
        if not Path(path).is_file():
            raise ValueError(f"{weights.flag} {path}: no such file; pass the path of the {weights.what} weights file.")
        return Path(path)
    cached = weights.cached_file()
    if cached.is_file():
        return cached
    if not download:
        raise WeightsUnavailable(
            f"no {weights.what} weights (pass {weights.flag} {weights.filename}, or --download_weights when online)"
        )
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Verifies the sha256 prefix and writes through a temporary file, so a failed download leaves nothing.
        torch.hub.download_url_to_file(weights.url, str(cached), hash_prefix=weights.hash_prefix, progress=True)
    except Exception as error:  # urllib raises many types (URLError, HTTPError, timeouts, hash mismatch)
        raise WeightsUnavailable(
            f"no {weights.what} weights (download failed: {type(error).__name__}; pass {weights.flag} FILE)"
        ) from None
    return cached


def weights_provenance(weights: PretrainedWeights, path: str | os.PathLike[str]) -> dict[str, object]:
    """What the report says about a weights file: its name, sha256, and whether that is the published checkpoint.

    A converted copy (safetensors) can be legitimate, so a mismatch is reported rather than refused.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    sha256 = digest.hexdigest()
    return {
        "file": str(path),
        "sha256": sha256,
        "published": weights.filename,
        "matches_published": sha256.startswith(weights.hash_prefix),
    }


def load_pretrained_state(
    weights: PretrainedWeights, path: str | os.PathLike[str] | None = None, *, download: bool = False
) -> dict[str, torch.Tensor]:
    """`read_state_dict(resolve_weights_file(...))`: raises WeightsUnavailable when no real weights exist."""
    return read_state_dict(resolve_weights_file(weights, path, download=download))


def check_keys(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], source: str) -> None:
    """Refuse a state dict whose keys or shapes differ from the network's (no silent partial loads)."""
    check_tensor_shapes(
        {name: tensor.shape for name, tensor in state.items()},
        {name: tensor.shape for name, tensor in expected.items()},
        where=source,
        network="the expected network",
        fix="pass the standard checkpoint file",
    )
