"""Upload a trained colorizer folder to the Hugging Face Hub.

    python -m trainer.push OUTPUT_DIR --hub_model_id user/my-colorizer [--hub_private] [--hub_token TOKEN]

The trainer calls the same code with `--push_to_hub`: `prepare_repo` before training (the login works and the
repo exists, so a bad token or a name you may not write to fails in seconds, not after hours), `push_output`
after it. The final model goes up (weights, config, model card, sample grid, loss curves) with its training
logs (the TensorBoard event files under logs/, which the Hub shows as "Training metrics"), never checkpoint
folders, validation grids or the best/ copy. A failed upload leaves the local folder untouched and says how
to retry.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from huggingface_hub import HfApi

from models.flags import FlagParser
from models.hub_files import CONFIG_NAME

# Everything the trainer writes that is neither the final model nor its logs.
IGNORE_PATTERNS = ["checkpoint-*", "checkpoint-*/**", "*.tmp", "*.tmp/**", "validation/**", ".*", "best/**"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
LOGIN_HINT = "log in with `hf auth login`, or pass --hub_token / set HF_TOKEN"


class PushError(RuntimeError):
    """An upload that did not happen; the message says how to retry."""


def check_hub_model_id(hub_model_id: str | None) -> str:
    if not hub_model_id:
        raise ValueError("--push_to_hub needs --hub_model_id USER/NAME (the model repo to create or update).")
    if not _REPO_ID.match(hub_model_id):
        raise ValueError(f"--hub_model_id '{hub_model_id}' is not a repo id of the form USER/NAME.")
    return hub_model_id


def prepare_repo(hub_model_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Before training: check the token, then create the model repo (or find it); returns its URL.

    Raises PushError with what to fix; nothing has been trained yet at that point.
    """
    check_hub_model_id(hub_model_id)
    api = HfApi(token=token)
    try:
        user = api.whoami()
    except Exception as error:  # no token, a revoked one, offline: all mean "this run could not upload"
        raise PushError(
            f"--push_to_hub: the Hub did not accept your login ({type(error).__name__}: {error}); {LOGIN_HINT}, "
            "then start again (nothing was trained)."
        ) from error
    try:
        url = api.create_repo(hub_model_id, repo_type="model", private=private, exist_ok=True)
    except Exception as error:
        name = user.get("name", "your account") if isinstance(user, dict) else "your account"
        raise PushError(
            f"--push_to_hub: {name} cannot create or write to the model repo {hub_model_id} "
            f"({type(error).__name__}: {error}); pick a --hub_model_id under your user or an organisation you "
            "may write to (nothing was trained)."
        ) from error
    return str(url)


def push_output(
    output_dir: str | Path,
    hub_model_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload ColorLab colorizer",
) -> str:
    """Create the repo if needed and upload the final model folder with its logs; returns the commit URL."""
    folder = Path(output_dir)
    check_hub_model_id(hub_model_id)
    if not (folder / CONFIG_NAME).is_file() and not (folder / "colorlab_diffusion.json").is_file():
        raise ValueError(
            f"{folder} holds no trained model ({CONFIG_NAME} missing); train first or pass the right folder."
        )
    api = HfApi(token=token)
    try:
        api.create_repo(hub_model_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=hub_model_id,
            repo_type="model",
            folder_path=str(folder),
            ignore_patterns=list(IGNORE_PATTERNS),  # upload_folder appends its defaults to the list it gets
            commit_message=commit_message,
        )
    except Exception as error:  # network, auth, quota: all mean "not uploaded, local copy is safe"
        raise PushError(
            f"Upload to {hub_model_id} failed ({type(error).__name__}: {error}). Your model is safe in {folder}; "
            f"retry "
            f"with: python -m trainer.push {folder} --hub_model_id {hub_model_id}"
        ) from error
    return str(getattr(commit, "commit_url", commit))


def main(argv: list[str] | None = None) -> int:
    parser = FlagParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("output_dir", help="The trained colorizer folder (the trainer's --output_dir).")
    parser.add_argument("--hub_model_id", required=True, help="Model repo USER/NAME to create or update.")
    parser.add_argument("--hub_private", action="store_true", help="Create the repo as private.")
    parser.add_argument("--hub_token", default=None, help="Hub token (default: HF_TOKEN or the saved login).")
    args = parser.parse_args(argv)
    try:
        url = push_output(args.output_dir, args.hub_model_id, private=args.hub_private, token=args.hub_token)
    except (ValueError, PushError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"uploaded: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
