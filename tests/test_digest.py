"""One weights digest (models.digest): the precision cache's key and the trainer's check that DDP ranks agree.

    .venv/bin/python -m pytest tests/test_digest.py -q

Tiny modules built in code with fixed weights, so a digest's value can be pinned.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from models.digest import weights_digest


class _Configured(nn.Module):
    """A network with a saved config, like a ColorizationNet (`hub_config()`), and a buffer of another dtype."""

    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.width = width
        self.conv = nn.Conv2d(1, width, 3)
        self.norm = nn.BatchNorm2d(width)

    def hub_config(self) -> dict:
        return {"width": self.width}


def _fixed(model: nn.Module) -> nn.Module:
    """Every tensor set from its position, so the bytes are the same on any machine and torch version."""
    with torch.no_grad():
        for index, tensor in enumerate(model.state_dict().values()):
            values = (torch.arange(tensor.numel()) + index) % 5
            tensor.copy_(values.reshape(tensor.shape).to(tensor.dtype))
    return model


# Digests computed by the implementation that wrote the precision caches already on users' machines
# (~/.cache/colorlab/precision.json is keyed by them): a change here would silently forget every measured choice.
STORED = {
    "configured": "7490972065b00950151bed2b9f2c08c41b85a346323fb6bd479677d7d425ce04",
    "plain": "2f5e7b254b90e85fb8012ee06f4f0dabfe897d2bef22854c44eadb42e0939050",
}


def test_the_digest_of_given_weights_never_changes() -> None:
    assert weights_digest(_fixed(_Configured())) == STORED["configured"]
    assert weights_digest(_fixed(nn.Sequential(nn.Linear(2, 3), nn.ReLU()))) == STORED["plain"]


def test_equal_weights_give_equal_digests_and_any_change_another() -> None:
    model = _fixed(_Configured())
    assert weights_digest(copy.deepcopy(model)) == weights_digest(model)
    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed.conv.bias[0] += 1e-6
    assert weights_digest(changed) != weights_digest(model)
    assert weights_digest(_fixed(_Configured(width=4))) != weights_digest(model)  # another architecture


def test_half_precision_weights_have_a_digest() -> None:
    # numpy has no bfloat16: the bytes are read through a uint8 view (the trainer's old digest raised here)
    model = _fixed(_Configured())
    bf16, fp16 = copy.deepcopy(model).to(torch.bfloat16), copy.deepcopy(model).to(torch.float16)
    assert len({weights_digest(model), weights_digest(bf16), weights_digest(fp16)}) == 3
    assert weights_digest(bf16) == weights_digest(copy.deepcopy(bf16))


def test_the_rank_check_digest_ignores_the_saved_config() -> None:
    """Only the main process records validation metrics in the config: the trainer's rank check (with_config=False)
    must call two ranks with the same tensors equal, however their configs differ."""
    main_rank, other_rank = _fixed(_Configured()), _fixed(_Configured())
    main_rank.hub_config = lambda: {"width": 3, "colorlab": {"metrics": {"ciede2000": 12.0}}}
    assert weights_digest(main_rank) != weights_digest(other_rank)
    assert weights_digest(main_rank, with_config=False) == weights_digest(other_rank, with_config=False)
    changed = _fixed(_Configured())
    with torch.no_grad():
        changed.conv.bias[0] += 1e-6
    assert weights_digest(changed, with_config=False) != weights_digest(other_rank, with_config=False)
