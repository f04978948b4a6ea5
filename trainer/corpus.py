"""Moved to corpus.photos; this path stays so documented commands (`python -m trainer.corpus ...`) keep working.

Code, tests and docs use corpus.photos (`python -m corpus.photos ...`); nothing imports this module.
"""

from corpus.photos import main

if __name__ == "__main__":
    raise SystemExit(main())
