"""A diffusion colorizer's sampling defaults and provenance: the `colorlab_diffusion.json` marker of its folder.

    settings = DiffusionSettings.from_json(json.loads(marker.read_text()), where=str(marker))

Below both the sampler (`models.diffusion`) and its model card (`models.diffusion_card`), which read it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from models.diffusion_tiny import TINY_BASE_MODEL, TINY_RESOLUTION

MARKER_FORMAT = "colorlab-diffusion"
MARKER_VERSION = 1


@dataclass
class DiffusionSettings:
    """Sampling defaults and provenance, stored in colorlab_diffusion.json next to the weights."""

    base_model: str = TINY_BASE_MODEL
    resolution: int = TINY_RESOLUTION  # the working size the ControlNet was trained at
    scheduler: str = "unipc"
    num_inference_steps: int = 20
    guidance_scale: float = 7.5  # only matters with a text prompt (see DiffusionColorizer.predict_ab)
    seed: int = 0
    prompt: str = ""
    includes_base: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"format": MARKER_FORMAT, "version": MARKER_VERSION, "model": "controlnet", **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any], *, where: str) -> DiffusionSettings:
        if data.get("format") != MARKER_FORMAT:
            raise ValueError(f'{where} is not a ColorLab diffusion marker (no "format": "{MARKER_FORMAT}").')
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})
