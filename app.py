"""python app.py   (`make demo`; also the Hugging Face Space entry point)

ColorLab's Gradio UI: Colorize (before/after sliders at full resolution), a blind A/B Arena,
the Leaderboard it feeds, and the Models' cards. This file is layout and wiring only: the work is
done by `space.app_logic` (handlers), `space.model_pool` (which models), `space.arena` (pairs and
votes), `judge.ratings` and `judge.leaderboard`. `demo` is built at import, as Spaces expect;
configuration comes from the environment (see space/README.md): COLORLAB_MODELS, COLORLAB_DATA_DIR,
COLORLAB_CONCURRENCY, COLORLAB_MIN_VOTES. Analytics are off unless GRADIO_ANALYTICS_ENABLED says otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys

# Read by gradio and huggingface_hub at import: without these they phone home from background threads.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# uvicorn replaces the socket peer with the last X-Forwarded-For entry when the peer is 127.0.0.1, so any local
# client could name itself. The arena reads forwarded headers itself, through COLORLAB_TRUSTED_PROXY_HOPS only
# (space.identity); an operator who sets FORWARDED_ALLOW_IPS keeps uvicorn's behaviour.
os.environ.setdefault("FORWARDED_ALLOW_IPS", "")

from collections.abc import Callable
from typing import Any

import gradio as gr

from judge.ratings import RatingsError
from space import app_logic as logic
from space import hint_state, hints_ui
from space.examples import EXAMPLES_NOTE
from space.ui_components import rating_radio, uploaded_image

# Plain arrows, not emoji: they render in every font (emoji showed as boxes in a fresh Debian chromium).
VOTE_BUTTONS = (("a", "← A is better"), ("tie", "Tie"), ("both_bad", "Both bad"), ("b", "B is better →"))
# Gradio's footer stays visible: it holds the "Use via API" link to the endpoints' documentation.
CSS = """
.notice { border-left: 4px solid #f59e0b; padding: 0.5em 1em; background: #fffbeb; }
.reveal { min-height: 2.5em; }
#colorize-status { min-height: 3.5em; }
/* Example captions wrap rather than end in an ellipsis (Gradio cuts them at 80 % of a thumbnail's width). */
/* The examples in as many columns as fit (one row on a laptop screen), all shown without a scrollbar: Gradio's
   gallery has a fixed column count and caps an auto-height gallery between 320 px and 55 % of the window. */
#colorize-examples .grid-container {
  grid-template-columns: repeat(auto-fit, minmax(96px, 1fr)); grid-template-rows: none;
}
#colorize-examples .grid-wrap.fixed-height { max-height: none; min-height: 0; }
/* A result that wraps alone onto the last row keeps its row-mates' size instead of filling the width (on a phone,
   where one column is all that fits, the column's min-width wins and it still takes the row). */
#colorize-results > .column { max-width: calc(50% - var(--layout-gap) / 2); }
/* With colour points, the models that follow them are shown first (space.app_logic orders the results). */
#colorize-results > .column.hint-first { order: -1; }
.hint-points { margin: 0; padding-left: 1.6em; }
.hint-swatch {
  display: inline-block; width: 1em; height: 1em; vertical-align: middle; border: 1px solid #0006; border-radius: 2px;
}
#colorize-examples .caption-label {
  max-width: calc(100% - 8px); white-space: normal; overflow-wrap: anywhere; font-size: var(--text-xs);
}
"""
# A result column is at least this wide: the four bundled models share a row at 1400 px, a phone shows one per row.
RESULT_MIN_WIDTH = 280


def heavy_concurrency() -> int:
    """How many colorize / arena requests run at once: COLORLAB_CONCURRENCY, default measured by bench_app_load.py.

    With the bundled (small) colorizers two requests at once keep both cores busy through the single-threaded
    parts of a request (decoding, PNG encoding, the gamut fit): 27 s instead of 37 s for 100 colorize calls on
    this 2-core CPU. Heavy networks that already fill both cores are better served one at a time (set 1).
    """
    return max(1, int(os.environ.get("COLORLAB_CONCURRENCY", "2")))


def _user_error(call: Callable[[], Any]) -> Any:
    """Run a handler, turning the one-sentence errors users can act on into a Gradio error toast."""
    try:
        return call()
    except (ValueError, RatingsError) as error:
        raise gr.Error(str(error), print_exception=False) from error


def _session(request: gr.Request | None) -> str:
    """The browser session: which running colorize request a Cancel click belongs to."""
    return (request.session_hash if request is not None else None) or "anonymous"


def _voter(ctx: logic.AppContext, request: gr.Request | None, profile: gr.OAuthProfile | None = None) -> str:
    """Who votes, for the rate limits, token binding and outlier test (space.identity): a signed-in account, else
    the socket peer address, read from X-Forwarded-For only through trusted proxies. Never the session hash (a
    client picks its own) and never stored raw (the store salts and hashes it)."""
    return ctx.voters.voter(request, profile)


def _sign_in(ctx: logic.AppContext) -> None:
    """The Hugging Face sign-in button, where sign-in is on (space.identity.VoterPolicy)."""
    if not ctx.voters.signin:
        return
    if importlib.util.find_spec("itsdangerous") is None:  # gradio's OAuth needs the gradio[oauth] extra
        gr.Markdown("**Sign-in is switched on but unavailable:** add `gradio[oauth]` to requirements.txt.")
        return
    gr.LoginButton()


def _sampling_controls(ctx: logic.AppContext) -> list[gr.components.Component]:
    """Samples, steps, seed and prompt for the diffusion models (defaults from the first one served)."""
    defaults = next(entry.extra_options for entry in ctx.pool.entries.values() if entry.draws_samples)
    with gr.Accordion("Diffusion sampling", open=True):
        samples = gr.Slider(
            *logic.SAMPLES_RANGE,
            value=1,
            step=1,
            label="Samples per diffusion model",
            info="Diffusion models draw several plausible colourings (seeds seed, seed + 1, ...), shown as a gallery.",
            elem_id="colorize-samples",
        )
        steps = gr.Slider(
            *logic.STEPS_RANGE,
            value=defaults.get("num_inference_steps", 20),
            step=1,
            label="Sampling steps",
            info="More steps: finer colour, proportionally slower.",
        )
        seed = gr.Number(value=defaults.get("seed", 0), precision=0, minimum=0, label="Seed")
        prompt = gr.Textbox(
            value=defaults.get("prompt", ""),
            label="Prompt (optional)",
            placeholder="e.g. a summer street, red car",
            max_length=logic.MAX_PROMPT_CHARS,
        )
    return [samples, steps, seed, prompt]


def _native_sizes(ctx: logic.AppContext) -> str:
    """ "name 192 px, other 128 px": what the working-size slider's auto means for the models served."""
    sizes = [f"{name} {ctx.pool.get(name).working_size_for(None)} px" for name in ctx.pool.names()]
    return ", ".join(sizes) or "no models loaded"


def _example_picker(ctx: logic.AppContext, image: gr.Image) -> None:
    """Thumbnails with captions (what each photo is, and whether it is a real black-and-white one); a click loads it.

    A gallery, not gr.Examples: gr.Examples shows either thumbnails or text labels, never both.
    """
    paths = [str(example.path) for example in ctx.examples]
    gallery = gr.Gallery(
        value=[(path, example.caption) for path, example in zip(paths, ctx.examples, strict=True)],
        label="Examples (click one)",
        columns=len(paths),  # under the photo and the controls, in one row where it fits (see CSS): results stay high
        height="auto",
        allow_preview=False,
        interactive=False,
        buttons=[],  # a click picks the photo; no download or fullscreen corner buttons over the thumbnails
        elem_id="colorize-examples",
    )

    def on_pick(event: gr.SelectData) -> str:
        return paths[event.index]

    gr.Markdown(EXAMPLES_NOTE + ".", elem_id="examples-note")
    gallery.select(on_pick, None, image, api_visibility="private")


def _colorize_tab(ctx: logic.AppContext) -> None:
    names = ctx.pool.names()
    samplers = {name for name, entry in ctx.pool.entries.items() if entry.draws_samples}
    with gr.Row():
        with gr.Column(scale=1):
            image = uploaded_image(  # the handler gets the file itself and decodes it with the project's reader
                label="Photo",
                sources=["upload", "clipboard"],
                height=340,
                elem_id="colorize-photo",
            )
        with gr.Column(scale=1):
            models = gr.CheckboxGroup(
                choices=names, value=names[:3], label="Models", info="Each chosen model colorizes the photo."
            )
            working_size = gr.Slider(
                logic.AUTO_WORKING_SIZE,
                logic.WORKING_SIZE_RANGE[1],
                value=logic.AUTO_WORKING_SIZE,
                step=32,
                label="Working size (render factor), pixels; 0 = auto",
                info="The model sees the photo at this size; its colour is then upsampled to full resolution. "
                f"Auto (0) runs each model at its native size: {_native_sizes(ctx)}. Diffusion models always "
                "sample at the size they were trained at.",
                elem_id="working-size",
            )
            saturation = gr.Slider(
                *logic.SATURATION_RANGE, value=1.0, step=0.05, label="Saturation", info="1 = as predicted, 0 = gray."
            )
            sampling = _sampling_controls(ctx) if samplers else []
            run = gr.Button("Colorize", variant="primary", elem_id="colorize-button")
            cancel = gr.Button("Cancel", variant="stop", elem_id="colorize-cancel") if samplers else None
            # Beside the photo they are placed on, in the room under the button (results stay as high as before).
            hint_panel = hints_ui.hint_controls(logic.hint_models(ctx))
    if ctx.examples:
        _example_picker(ctx, image)
    status = gr.Markdown(elem_id="colorize-status")
    slots = []
    # Side by side: one column per chosen model, wrapping to the next row when the window is narrow.
    with gr.Row(elem_id="colorize-results"):
        for index, name in enumerate(names):
            with gr.Column(visible=False, min_width=RESULT_MIN_WIDTH, elem_id=f"result-{index}") as box:
                header = gr.Markdown(f"**{name}**")
                slider = gr.ImageSlider(
                    label=f"{name}: before / after",
                    type="filepath",
                    format="png",
                    interactive=False,
                    show_label=False,  # the header above names the model; a label would cover the photo's corner
                    max_height=560,
                    buttons=["fullscreen"],  # the full-resolution download is the button below
                    elem_id=f"slider-{index}",
                )
                download = gr.DownloadButton("Download full-resolution PNG", size="sm")
                gallery = None
                if name in samplers:  # every colouring a diffusion model drew, when it drew several
                    gallery = gr.Gallery(
                        label=f"{name}: all sampled colourings",
                        type="filepath",
                        format="png",
                        columns=2,
                        interactive=False,
                        visible=False,
                        elem_id=f"samples-{index}",
                    )
            slots.append((name, box, header, slider, download, gallery))

    # Per browser session: the colour points (JSON-like dicts, see space.hint_state) and the current result's PNG
    # (the first one shown), from which a click may take its colour. Both are checked whenever they are used.
    points = gr.State([])
    current = gr.State(None)

    def on_colorize(
        path: str | None,
        chosen: list[str],
        size: float,
        sat: float,
        placed: list[dict[str, Any]] | None = None,
        num_samples: float = 1,
        steps: float | None = None,
        seed: float | None = None,
        prompt: str | None = None,
        request: gr.Request = None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's documented way to get a progress tracker)
    ) -> list[Any]:
        options = {"num_samples": num_samples, "num_inference_steps": steps, "seed": seed, "prompt": prompt}
        options = {key: value for key, value in options.items() if value is not None} if samplers else {}

        def report(name: str, step: int, total: int) -> None:
            progress((step, total), desc=f"{name}: sampling step {step} of {total}")

        # Cancel finds this request's event through the browser session.
        with ctx.cancels.running(_session(request)) as cancel_event:
            outcome = _user_error(
                lambda: logic.colorize(
                    ctx,
                    path,
                    chosen,
                    working_size=size,
                    saturation=sat,
                    options=options,
                    progress=report,
                    cancel_event=cancel_event,
                    hints=hint_state.hints_from_points(placed),
                )
            )
        width, height = outcome.size
        status = f"Colorized a {width}×{height} photo at working size {int(size)}."
        if outcome.hints:
            status = status[:-1] + f" with {outcome.hints} colour point{'s' if outcome.hints != 1 else ''}."
            if not any(result.hinted for result in outcome.results):
                status += " None of the chosen models follows colour points, so all colorized automatically."
        if outcome.cancelled:
            status = f"Cancelled; {len(outcome.results)} model(s) had finished."
        shown = next((str(result.image) for result in outcome.results if result.image is not None), None)
        updates: list[Any] = [status, shown]
        results = {result.name: result for result in outcome.results}
        for name, _box, _header, _slider, _download, gallery in slots:
            result = results.get(name)
            samples = result.samples if result is not None else ()
            # The models that were given the points come first (CSS order); without points, the pool's order.
            first = ["hint-first"] if result is not None and result.hinted else []
            if result is None:
                updates += [gr.update(visible=False), gr.update(), None, None]
            elif result.image is None:
                updates += [
                    gr.update(visible=True, elem_classes=first),
                    f"**{name}** could not colorize this photo: {result.error}",
                    None,
                    None,
                ]
            else:
                pair = (str(outcome.input_image), str(result.image))
                header = (
                    f"**{name}** · {result.seconds:.2f} s at working size {result.working_size} · "
                    f"{width}×{height} PNG" + (f" · {len(samples)} samples" if len(samples) > 1 else "")
                )
                if result.hint_note:
                    header += f" · {result.hint_note}"
                updates += [gr.update(visible=True, elem_classes=first), header, pair, str(result.image)]
            if gallery is not None:
                first_seed = int(options.get("seed", ctx.pool.get(name).extra_options.get("seed", 0)))
                shown = [(str(p), f"sample {k + 1} (seed {first_seed + k})") for k, p in enumerate(samples)]
                updates.append(gr.update(value=shown or None, visible=len(shown) > 1))
        return updates

    outputs = [status, current]
    outputs += [component for _, *components in slots for component in components if component is not None]
    run.click(
        on_colorize,
        [image, models, working_size, saturation, points, *sampling],
        outputs,
        api_name="colorize",
        concurrency_id="cpu",
        concurrency_limit=heavy_concurrency(),
        # The result slots are hidden until a model answers: diffusion step progress shows on the status line.
        show_progress_on=[status] if samplers else None,
    )
    if cancel is not None:

        def on_cancel(request: gr.Request) -> str:
            running = ctx.cancels.cancel(_session(request))
            return "Cancelling: sampling stops after its current step." if running else "Nothing is sampling now."

        # The event stops the request at its next sampling step and it returns the models that had finished.
        # (Gradio's `cancels=` is not used: it cannot stop a running handler, and it marks the run as an error.)
        cancel.click(on_cancel, None, status, api_name="cancel")
    hints_ui.wire_hints(ctx, image, models, points, current, hint_panel, status, _user_error)


def _arena_tab(ctx: logic.AppContext, board_outputs: list[gr.components.Component]) -> None:
    gr.Markdown(
        "Two anonymous models colorize the same photo. Pick the one that looks more natural; "
        "their names are revealed after your vote. Uses your photo if you add one, otherwise a random example."
    )
    if ctx.arena is None:
        gr.Markdown(f"**The arena is off:** {ctx.arena_problem}", elem_classes="notice")
    _sign_in(ctx)
    token = gr.State(None)  # server-side only: the browser never sees the token or the model names
    with gr.Row(equal_height=True):
        upload = uploaded_image(label="Your photo (optional)", height=200, scale=2)
        with gr.Column(scale=1):
            consent = gr.Checkbox(
                label="Keep my photo for research",
                info="Off: only a fingerprint (sha256) of your photo is stored with your vote.",
            )
            start = gr.Button("Next pair", variant="primary", elem_id="arena-next")
    prompt = gr.Markdown("Press **Next pair** to start.", elem_id="arena-prompt")
    # The gray input beside A and B: people judge a colorization against what the models were given.
    with gr.Row(elem_id="arena-images"):
        with gr.Column(min_width=RESULT_MIN_WIDTH // 2):
            gray = gr.Image(
                label="Input (gray)", interactive=False, height=360, buttons=["fullscreen"], elem_id="arena-input"
            )
        with gr.Column(min_width=RESULT_MIN_WIDTH // 2):
            image_a = gr.Image(label="A", interactive=False, height=360, buttons=["fullscreen"], elem_id="arena-a")
            rating_a = rating_radio("Rate A (optional; 1 = bad, 5 = great)", elem_id="rate-a")
        with gr.Column(min_width=RESULT_MIN_WIDTH // 2):
            image_b = gr.Image(label="B", interactive=False, height=360, buttons=["fullscreen"], elem_id="arena-b")
            rating_b = rating_radio("Rate B (optional; 1 = bad, 5 = great)", elem_id="rate-b")
    with gr.Row():
        buttons = [gr.Button(label, interactive=False, elem_id=f"vote-{choice}") for choice, label in VOTE_BUTTONS]
    reveal = gr.Markdown(elem_classes="reveal", elem_id="arena-reveal")

    def on_next(path: str | None, keep: bool, request: gr.Request, profile: gr.OAuthProfile | None) -> list[Any]:
        round_ = _user_error(lambda: logic.arena_round(ctx, path, voter=_voter(ctx, request, profile), consent=keep))
        # The photo is not named: a name told scripts which example to re-run through /colorize to spot the models.
        text = "**Which colorization looks more natural?**"
        enabled = [gr.update(interactive=True)] * len(buttons)
        images = [str(round_.gray), str(round_.image_a), str(round_.image_b)]
        return [round_.token, *images, None, None, text, "", *enabled]

    start.click(
        on_next,
        [upload, consent],
        [token, gray, image_a, image_b, rating_a, rating_b, prompt, reveal, *buttons],
        api_name="arena_next",
        concurrency_id="cpu",
        concurrency_limit=heavy_concurrency(),
    )

    def vote_handler(choice: str) -> Callable[..., list[Any]]:
        # The ratings default to None, so API clients may leave them out (the API page names them rating_a/b).
        def on_vote(
            current: str | None,
            rating_a: int | None = None,
            rating_b: int | None = None,
            request: gr.Request = None,
            profile: gr.OAuthProfile | None = None,
        ) -> list[Any]:
            vote = _user_error(
                lambda: logic.arena_vote(
                    ctx, current, choice, voter=_voter(ctx, request, profile), rating_a=rating_a, rating_b=rating_b
                )
            )
            disabled = [gr.update(interactive=False)] * len(buttons)
            return [None, logic.reveal_markdown(vote) + " Press **Next pair** for another.", *disabled]

        return on_vote

    for (choice, _), button in zip(VOTE_BUTTONS, buttons, strict=True):
        button.click(
            vote_handler(choice),
            [token, rating_a, rating_b],
            [token, reveal, *buttons],
            api_name=f"vote_{choice}",
            trigger_mode="once",  # a double click must not try to vote twice
        ).success(_board_handler(ctx), None, board_outputs, api_visibility="private")


def _board_handler(ctx: logic.AppContext) -> Callable[[], list[Any]]:
    def on_board() -> list[Any]:
        view = logic.leaderboard_view(ctx)
        return [view.summary, view.figure, view.table, view.win_rates]

    return on_board


def _leaderboard_components() -> list[gr.components.Component]:
    """Created unrendered, because the Arena (an earlier tab) refreshes them after each vote."""
    return [
        gr.Markdown(render=False, elem_id="board-summary"),
        gr.Plot(label="Scores with 95% intervals", render=False),
        gr.Dataframe(label="Leaderboard", interactive=False, wrap=True, render=False, elem_id="board-table"),
        gr.Dataframe(label="Win rate of the row model against the column model", interactive=False, render=False),
    ]


def _models_tab(ctx: logic.AppContext) -> None:
    for index, card in enumerate(logic.model_cards(ctx)):
        with gr.Accordion(card.name, open=index == 0):
            # The card in order, its local images (the sample grid) as image components where the card shows them.
            for part in card.parts:
                if isinstance(part, str):
                    gr.Markdown(part)
                else:
                    gr.Image(
                        str(part),
                        show_label=False,
                        interactive=False,
                        buttons=["fullscreen"],
                        elem_classes="card-image",
                    )


def build_demo(ctx: logic.AppContext) -> gr.Blocks:
    """The whole UI over one AppContext (tests build their own from tiny models)."""
    with gr.Blocks(title="ColorLab", delete_cache=(3600, 3600)) as blocks:
        gr.Markdown(
            "# ColorLab\nColour for black-and-white photographs, from several models side by side, "
            "and a blind arena where people judge which colorization looks right."
        )
        notice = ctx.pool.notice_markdown()
        if notice:
            gr.Markdown(notice, elem_classes="notice")
        with gr.Tab("Colorize"):
            _colorize_tab(ctx)
        board_outputs = _leaderboard_components()
        with gr.Tab("Arena"):
            _arena_tab(ctx, board_outputs)
        with gr.Tab("Leaderboard") as board_tab:
            gr.Markdown(
                "Bradley-Terry scores from the arena votes (Elo-like scale, mean 1000; ties and *both bad* count "
                "half), with 95% bootstrap intervals. MOS is the mean 1-5 rating with a 95% t-interval."
            )
            for component in board_outputs:
                component.render()
            refresh = gr.Button("Refresh", size="sm")
        with gr.Tab("Models"):
            _models_tab(ctx)
        gr.Markdown(
            "Privacy: uploaded photos are colorized in memory and not kept, unless you tick *Keep my photo* in the "
            "arena; votes store a salted hash of your network address (or, signed in, of your account name) for the "
            "rate limits, never the address or the name.",
            elem_classes="privacy",
        )
        on_board = _board_handler(ctx)
        refresh.click(on_board, None, board_outputs, api_name="leaderboard")
        board_tab.select(on_board, None, board_outputs, api_visibility="private")
        blocks.load(on_board, None, board_outputs, api_visibility="private")
    # Votes and leaderboard reads are cheap; only colorizing is limited (concurrency_id "cpu" above).
    blocks.queue(default_concurrency_limit=8)
    return blocks


def launch_options() -> dict[str, Any]:
    """Keyword arguments for `demo.launch` (Gradio 6 takes theme and css there, not in Blocks)."""
    return {
        "theme": gr.themes.Soft(primary_hue="orange", secondary_hue="stone"),
        "css": CSS,
        # Gradio refuses larger uploads before they reach a handler (space.uploads checks again).
        "max_file_size": CONTEXT.uploads.max_bytes,
    }


CONTEXT = logic.AppContext.from_env()
demo = build_demo(CONTEXT)

if __name__ == "__main__":
    # SIGTERM (a Space or container stopping) exits like Ctrl+C, so exit handlers remove the temporary outputs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # GRADIO_SERVER_NAME / GRADIO_SERVER_PORT choose the address (a Space sets 0.0.0.0); 127.0.0.1:7860 otherwise.
    demo.launch(**launch_options())
