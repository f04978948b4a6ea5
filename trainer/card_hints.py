"""Moved to judge.card_hints; this path stays so documented commands (`python -m trainer.card_hints ...`) keep working.

Code, tests and docs use judge.card_hints (`python -m judge.card_hints ...`); nothing imports this module.
"""

from judge.card_hints import main

if __name__ == "__main__":
    raise SystemExit(main())
