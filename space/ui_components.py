"""Gradio components configured the way ColorLab needs them."""

from __future__ import annotations

from typing import Any

import gradio as gr


def _uploaded_path(payload: Any) -> str | None:
    if payload is None or getattr(payload, "path", None) is None:
        return None
    return str(payload.path)


def uploaded_image(**kwargs: Any) -> gr.Image:
    """A gr.Image whose handler receives the uploaded file itself (its cached path), undecoded.

    gr.Image opens every upload with PIL before the handler runs, so a zero-byte file, a text file named .png, a
    HEIC photo or a decompression bomb ended in Gradio's generic "Error" and ColorLab's own sentence never reached
    the user. Here decoding is left to space.uploads (models.imageio), which says what is wrong. The browser side
    and the API description stay those of gr.Image. (An instance override, not a subclass: Gradio writes a .pyi
    stub next to the module of every component subclass, which fails in a Space's read-only folder.)
    """
    image = gr.Image(type="filepath", image_mode=None, **kwargs)
    image.preprocess = _uploaded_path  # type: ignore[method-assign]
    return image
