"""One package per user path (docs/architecture.md): who may import whom, and the old module paths that stay.

    .venv/bin/python -m pytest tests/test_layout.py -q

Evaluation and the ratings store moved to judge/, the corpus builders to corpus/. Their old `python -m` paths stay
as thin entry points because the README of earlier releases, and the bundled model cards (weights/, byte-checked,
never rewritten), still name them.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_import_cycles import find_cycle, import_graph, project_modules

REPO_ROOT = Path(__file__).resolve().parents[1]

# old module path -> the module whose main() it runs
ENTRY_POINTS = {
    "trainer.evaluate": "judge.evaluate",
    "trainer.card_sweep": "judge.card_sweep",
    "trainer.card_hints": "judge.card_hints",
    "trainer.corpus": "corpus.photos",
    "trainer.cutouts": "corpus.cutouts",
    "space.ratings": "judge.export",  # `python -m space.ratings export`: the ratings CLI is judge.export's
}

# package -> the other top-level packages its modules may import: a one-way stack (docs/architecture.md),
#     models  <-  corpus  <-  judge  <-  trainer        space <- models, judge        app <- space, judge, models
# models/ knows nothing above itself (the simulated user, models.hint_sampling, included); corpus/ is the data layer
# (the corpus builders, opening any datasets source, the cut-out set format) that the judge and the trainer both read
# datasets through; the trainer validates with the judge's metrics; the app's backend reaches the ratings via judge/.
ALLOWED = {
    "models": set(),
    "corpus": {"models"},
    "judge": {"models", "corpus"},
    "trainer": {"models", "corpus", "judge"},
    "space": {"models", "judge"},
    "app": {"models", "space", "judge"},
}

# Where a `python -m` command may be documented.
DOCS = sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "docs").glob("*.md"))
DOCUMENTS = ["README.md", "Makefile", ".ci/run", "space/README.md", *DOCS]


def test_each_package_imports_only_the_packages_below_it() -> None:
    graph = import_graph(project_modules())
    wrong = []
    for module, imported in graph.items():
        package = module.split(".")[0]
        if package not in ALLOWED or module in ENTRY_POINTS:  # tests, benchmarks, docs tools; the thin entry points
            continue
        others = {name for name in imported if name.split(".")[0] not in ALLOWED[package] | {package}}
        wrong += [f"{module} imports {name}" for name in sorted(others)]
    assert not wrong, "; ".join(wrong)


def test_no_two_packages_import_each_other_even_through_a_third() -> None:
    """The package-level graph (every module's imports, thin entry points included) has no cycle: a change low in
    the stack never needs one higher up, and each package can be read with only the ones below it in mind."""
    graph = import_graph(project_modules())
    packages: dict[str, set[str]] = {package: set() for package in ALLOWED}
    for module, imported in graph.items():
        package = module.split(".")[0]
        if package in packages:
            packages[package] |= {name.split(".")[0] for name in imported} & set(packages) - {package}
    assert packages["trainer"] >= {"models", "corpus", "judge"}  # the scan saw the stack
    assert find_cycle(packages) is None, " -> ".join(find_cycle(packages) or [])


def test_the_training_flags_are_checked_before_torch_is_imported() -> None:
    """The flag parser, the configs and the cut-out set reader (`--composite_cutouts` is checked while parsing) stay
    standard library only, wherever they live, so a wrong flag or `--help` answers without loading torch."""
    code = "import sys, trainer.args, trainer.config, corpus.cutout_set; print(sorted(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    heavy = {"torch", "numpy", "PIL", "datasets"} & {name.split(".")[0] for name in ast.literal_eval(result.stdout)}
    assert not heavy, f"imported while parsing training flags: {sorted(heavy)}"


@pytest.mark.parametrize("old", sorted(ENTRY_POINTS))
def test_an_old_entry_point_is_a_thin_alias_of_its_new_home(old: str) -> None:
    """A few lines that import main from the new module and nothing else (no re-exports: code uses new paths)."""
    path = REPO_ROOT / (old.replace(".", "/") + ".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert [(node.module, [a.name for a in node.names]) for node in imports] == [(ENTRY_POINTS[old], ["main"])]
    assert f"Moved to {ENTRY_POINTS[old].rpartition('.')[0]}" in (ast.get_docstring(tree) or "")
    assert not [node for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Assign)]


@pytest.mark.slow  # six interpreters
@pytest.mark.parametrize("old", sorted(ENTRY_POINTS))
def test_an_old_entry_point_still_answers_help(old: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", old, "--help"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m "), result.stdout[:200]


def test_every_documented_module_command_exists() -> None:
    """Each `python -m pkg.module` in the README, the docs, the Makefile, CI and the bundled model cards is a module
    of the repository (old paths included, through the entry points above)."""
    texts = {name: (REPO_ROOT / name).read_text(encoding="utf-8") for name in DOCUMENTS}
    for card in sorted((REPO_ROOT / "weights").glob("*/*")):
        if card.name in ("README.md", "config.json"):
            texts[card.relative_to(REPO_ROOT).as_posix()] = card.read_text(encoding="utf-8")
    commands = {(name, m) for name, text in texts.items() for m in re.findall(r"python -m ([a-z_]+\.[a-z_.]+)", text)}
    assert any(module == "trainer.evaluate" for _, module in commands)  # the scan found the docs
    missing = [
        f"{name}: python -m {module}"
        for name, module in sorted(commands)
        if not (REPO_ROOT / (module.rstrip(".").replace(".", "/") + ".py")).is_file()
        and not (REPO_ROOT / module.rstrip(".").replace(".", "/") / "__main__.py").is_file()
    ]
    assert not missing, "documented commands that no longer exist: " + "; ".join(missing)
