"""The judge path: machine metrics and reports (`python -m judge.evaluate`), and the human ratings the arena
collects (the ratings store, its export and Hub sync, the leaderboard statistics)."""
