"""The Colorize tab's colour-point controls: Gradio components and their wiring, used by app.py.

    panel = hint_controls(logic.hint_models(ctx))       # beside the photo: colour, its source, the list, undo, clear
    wire_hints(ctx, image, models, points, current, panel, status, user_error)

A click on the photo (gr.Image .select: the pixel in the photo's own coordinates) places a point; what a point is,
and every check of what the browser sends, is in `space.hint_state`. The colorize handler itself (app.py) reads
the same `points` state and hands the points to `space.app_logic.colorize`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from space import hint_state
from space.app_logic import AppContext, hint_models

DEFAULT_COLOUR = "#c81e28"  # a clear red: the first thing people mark is a red coat, a cap, a car


@dataclass(frozen=True)
class HintPanel:
    colour: gr.ColorPicker
    source: gr.Radio
    listing: gr.HTML
    undo: gr.Button
    clear: gr.Button


def hint_controls(followers: Sequence[str]) -> HintPanel:
    """The colour of the next click, where it comes from, the list of points, undo and clear (rendered in place)."""
    who = ", ".join(followers) if followers else "none of the models served here"
    # Open where a served model follows points; closed (but there, with its explanation) where none does.
    with gr.Accordion("Colour points (hints)", open=bool(followers), elem_id="hint-panel"):
        gr.Markdown(
            "Click on the photo to say which colour a place should be, then press **Colorize**. "
            f"Models that follow colour points: {who}; the others colorize automatically.",
            elem_id="hint-help",
        )
        with gr.Row():
            colour = gr.ColorPicker(value=DEFAULT_COLOUR, label="Colour of the next point", elem_id="hint-colour")
            source = gr.Radio(
                list(hint_state.COLOUR_SOURCES),
                value=hint_state.PICKED,
                label="A click takes",
                info="Or keep the colour the current result has at that place.",
                elem_id="hint-source",
            )
        listing = gr.HTML(hint_state.points_html([]), elem_id="hint-points")
        with gr.Row():
            undo = gr.Button("Undo last point", size="sm", elem_id="hint-undo")
            clear = gr.Button("Clear points", size="sm", elem_id="hint-clear")
    return HintPanel(colour, source, listing, undo, clear)


def click_note(count: int, chosen: list[str], followers: Sequence[str]) -> tuple[list[str], str]:
    """The model choice after a point is placed (the followers ticked when none is) and the status line."""
    note = f"{count} colour point{'s' if count != 1 else ''}; press **Colorize** to use them."
    if not followers:
        return chosen, note + " None of the models served here follows colour points."
    if set(followers) & set(chosen):
        return chosen, note
    return chosen + list(followers), note + f" Ticked {', '.join(followers)}: it follows colour points."


def wire_hints(
    ctx: AppContext,
    image: gr.Image,
    models: gr.CheckboxGroup,
    points: gr.State,
    current: gr.State,
    panel: HintPanel,
    status: gr.Markdown,
    user_error: Callable[[Callable[[], Any]], Any],
) -> None:
    """A click on the photo places a point; undo and clear; a new (or removed) photo starts with no points.

    `points` is the session's list of points, `current` the path of the result shown first (a click may take its
    colour); `user_error` turns a one-sentence ValueError into the UI's error toast (app.py's `_user_error`)."""
    followers = hint_models(ctx)

    def on_click(
        path: str | None,
        placed: list[dict[str, Any]] | None,
        picked: str | None,
        origin: str | None,
        result: str | None,
        chosen: list[str] | None,
        event: gr.SelectData,
    ) -> list[Any]:
        updated = user_error(
            lambda: hint_state.place_point(
                placed,
                event.index,
                photo=path,
                uploads=ctx.uploads,
                colour=picked,
                source=origin,
                result=result,
                outputs_root=ctx.outputs.root,
            )
        )
        served = [name for name in chosen or [] if name in ctx.pool.entries]
        ticked, note = click_note(len(updated), served, followers)
        return [updated, hint_state.points_html(updated), gr.update(value=ticked), note]

    image.select(
        on_click,
        [image, points, panel.colour, panel.source, current, models],
        [points, panel.listing, models, status],
        api_visibility="private",
    )

    def on_undo(placed: list[dict[str, Any]] | None) -> list[Any]:
        updated = hint_state.undo_point(placed)
        return [updated, hint_state.points_html(updated)]

    def on_clear() -> list[Any]:
        return [[], hint_state.points_html([])]

    def on_new_photo() -> list[Any]:
        # Points are pixels of one photo, and the result a click may take its colour from is of that photo too.
        return [[], hint_state.points_html([]), None]

    panel.undo.click(on_undo, points, [points, panel.listing], api_visibility="private")
    panel.clear.click(on_clear, None, [points, panel.listing], api_visibility="private")
    image.change(on_new_photo, None, [points, panel.listing, current], api_visibility="private")
