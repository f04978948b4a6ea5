"""Moved to judge.card_sweep; this path stays so documented commands (`python -m trainer.card_sweep ...`) keep working.

Code, tests and docs use judge.card_sweep (`python -m judge.card_sweep ...`); nothing imports this module.
"""

from judge.card_sweep import main

if __name__ == "__main__":
    raise SystemExit(main())
