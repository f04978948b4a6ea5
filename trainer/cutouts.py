"""Moved to corpus.cutouts; this path stays so documented commands (`python -m trainer.cutouts ...`) keep working.

Code, tests and docs use corpus.cutouts (`python -m corpus.cutouts ...`); nothing imports this module.
"""

from corpus.cutouts import main

if __name__ == "__main__":
    raise SystemExit(main())
