"""Moved to judge.ratings (the ratings store; its export command lives in judge.export); this path stays so the
documented `python -m space.ratings export ...` keeps working.

The code, its tests and its documentation live in judge/ (`python -m judge.ratings export ...`); nothing imports
this module.
"""

from judge.export import main

if __name__ == "__main__":
    raise SystemExit(main())
