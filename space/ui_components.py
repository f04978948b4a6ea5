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


RATINGS = (1, 2, 3, 4, 5)


def rating_radio(label: str, **kwargs: Any) -> gr.Radio:
    """A 1-5 rating whose API description says what it accepts: the integers 1-5 (or nothing).

    gr.Radio describes every choice as a string ("1"-"5") in the API page and gradio_client's view_api, so clients
    sent "4" and were refused (Radio accepts only the choice values themselves, here integers). The browser side is
    unchanged; only the schema is corrected (an instance override, for the reason given in `uploaded_image`).
    """
    radio = gr.Radio(list(RATINGS), label=label, **kwargs)
    # No "enum": gradio_client renders any enum as quoted strings (Literal['1', ...]), the very mistake fixed here.
    schema = {
        "type": "integer",
        "minimum": RATINGS[0],
        "maximum": RATINGS[-1],
        "title": "Rating",
        "additional_description": "an integer from 1 (bad) to 5 (great), or None for no rating",
    }
    radio.api_info = lambda: dict(schema)  # type: ignore[method-assign]
    radio.preprocess = _checked_rating  # type: ignore[method-assign]
    return radio


def _checked_rating(payload: Any) -> int | None:
    # gr.Radio's own refusal is a traceback in the server log and "Value: '4' (type: <class 'str'>) is not in the
    # list of choices" for the client; this says what to send instead.
    if payload is None:
        return None
    if isinstance(payload, bool) or payload not in RATINGS or not isinstance(payload, int):
        raise gr.Error(f"A rating must be an integer from 1 to 5, or None, not {payload!r}.", print_exception=False)
    return payload
