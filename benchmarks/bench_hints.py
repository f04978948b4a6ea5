"""python benchmarks/bench_hints.py [--points 10] [--side 1024] [--rounds 5]

What colour points cost: the bundled hint model (weights/colour_hints) colorizing one photo with no points and with
N points (network with the hint map, then hint propagation), run in turn so load hits both alike. Prints the
median wall time of each and their ratio.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import bench_support

bench_support.use_serving_environment()  # before torch loads OpenMP and malloc settles

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from models.hints import Hint  # noqa: E402
from models.hub import load_colorizer  # noqa: E402

HINT_MODEL = Path(__file__).resolve().parents[1] / "weights" / "colour_hints"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--points", type=int, default=10)
    parser.add_argument("--side", type=int, default=1024, help="the photo's side in pixels (a square)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    colorizer = load_colorizer(str(HINT_MODEL))
    photo = Image.fromarray(data.astronaut()).resize((args.side, args.side))
    rng = np.random.default_rng(0)
    hints = [
        Hint(x=float(x), y=float(y), rgb=(200, 30, 40), radius=6)
        for x, y in rng.integers(0, args.side, (args.points, 2))
    ]
    variants = {"plain": lambda: colorizer.colorize(photo), "hinted": lambda: colorizer.colorize(photo, hints=hints)}
    figures = bench_support.alternate(variants, args.rounds)
    plain, hinted = figures["plain"][0], figures["hinted"][0]
    print(f"colour_hints, {args.side}x{args.side} photo, median of {args.rounds} paired rounds:")
    print(f"  no points: {plain * 1000:.0f} ms; {args.points} points: {hinted * 1000:.0f} ms ({hinted / plain:.2f}x)")


if __name__ == "__main__":
    main()
