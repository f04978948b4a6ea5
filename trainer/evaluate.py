"""Moved to judge.evaluate; this path stays so documented commands (`python -m trainer.evaluate ...`, the command
lines in the bundled model cards) keep working.

The code, its tests and its documentation live in judge.evaluate (`python -m judge.evaluate ...`); nothing imports
this module.
"""

import os

from judge.evaluate import main

if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # as judge.evaluate does when it is the program
    raise SystemExit(main())
