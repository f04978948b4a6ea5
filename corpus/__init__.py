"""The data path: builders of the open photo corpus (`python -m corpus.photos build`) and of the cut-out set
(`python -m corpus.cutouts build`), from photographs that Debian and PyPI packages ship."""
