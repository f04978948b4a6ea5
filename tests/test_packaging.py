"""pyproject.toml: dependencies in step with the requirements.txt lock, console scripts, and what a wheel holds.

.venv/bin/python -m pytest tests/test_packaging.py -q
"""

from __future__ import annotations

import fnmatch
import importlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
REPO_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
SCRIPTS = PROJECT["scripts"]
# The top-level packages of the wheel (one per user path, plus models/), as pyproject.toml lists them.
TOP_PACKAGES = sorted({p.split(".")[0] for p in PYPROJECT["tool"]["setuptools"]["packages"]})


def _lock() -> dict[str, str]:
    """requirements.txt as {normalised name: exact version}."""
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)$", line.strip())
        if match:
            pins[_normalise(match.group(1))] = match.group(2)
    return pins


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> list[Requirement]:
    return [Requirement(r) for r in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"]]


def test_every_declared_dependency_is_locked_at_a_version_its_range_allows() -> None:
    lock = _lock()
    declared = {_normalise(r.name): r for r in _declared()}
    assert set(declared) == set(lock), "pyproject.toml and requirements.txt must list the same packages"
    for name, requirement in declared.items():
        assert requirement.specifier.contains(lock[name]), f"{name}=={lock[name]} is outside {requirement}"
    assert str(declared["torch"].specifier) == "==2.13.0"  # any other torch pulls a CUDA build and several GB


def test_torchvision_and_lpips_are_never_dependencies() -> None:
    # lpips requires torchvision, which breaks transformers/diffusers on the CPU torch: installed with --no-deps.
    names = {_normalise(r.name) for r in _declared()}
    assert not names & {"torchvision", "lpips"}
    assert "pip install --no-deps lpips==0.1.4" in (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_runtime_dependencies_are_imported_by_the_code() -> None:
    """No runtime dependency that nothing imports (tensorboard is accelerate's default --report_to tracker)."""
    import_names = {"pillow": "PIL", "scikit-image": "skimage", "pyyaml": "yaml", "huggingface-hub": "huggingface_hub"}
    sources = "\n".join(
        path.read_text(encoding="utf-8") for folder in TOP_PACKAGES for path in (REPO_ROOT / folder).glob("*.py")
    ) + (REPO_ROOT / "app.py").read_text(encoding="utf-8")
    for requirement in PROJECT["dependencies"]:
        name = _normalise(Requirement(requirement).name)
        if name == "tensorboard":
            assert '"tensorboard"' in sources  # the trainer's --report_to default (its flag definitions)
            continue
        module = import_names.get(name, name.replace("-", "_"))
        assert re.search(rf"^\s*(from|import) {module}\b", sources, re.MULTILINE), f"nothing imports {name}"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_scripts_print_help_and_exit_zero(script: str, capsys) -> None:
    module_name, function_name = SCRIPTS[script].split(":")
    main = getattr(importlib.import_module(module_name), function_name)
    assert main.__annotations__.get("return") in (int, "int"), f"{SCRIPTS[script]} must return an exit code"
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_every_data_file_of_the_packages_is_package_data() -> None:
    """Files the code reads next to itself (presets, corpus allow-list, model list) must reach an installed copy."""
    setuptools = PYPROJECT["tool"]["setuptools"]
    packages = sorted(setuptools["packages"], key=len, reverse=True)  # the innermost package owns a file
    for top in TOP_PACKAGES:
        for path in (REPO_ROOT / top).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(REPO_ROOT).as_posix()
            package = next(p for p in packages if relative.startswith(p.replace(".", "/") + "/"))
            inside = relative.removeprefix(package.replace(".", "/") + "/")
            patterns = setuptools["package-data"].get(package, [])
            assert any(fnmatch.fnmatch(inside, p) for p in patterns), f"{relative} is not package data"


def test_the_package_list_matches_the_packages_on_disk() -> None:
    """Every top-level folder with an __init__.py is in pyproject's package list, and every listed package exists:
    a package added (or moved, like judge/ and corpus/ out of trainer/ and space/) must reach the wheel."""
    found = {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")} - {"tests"}  # tests/ is not in the wheel
    assert found == set(TOP_PACKAGES)
    for package in PYPROJECT["tool"]["setuptools"]["packages"]:
        assert (REPO_ROOT / package.replace(".", "/")).is_dir(), f"pyproject lists {package}, which does not exist"


def test_the_wheel_holds_the_packages_app_data_and_entry_points(tmp_path: Path) -> None:
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "app.py"):
        shutil.copy2(REPO_ROOT / name, source / name)
    for package in TOP_PACKAGES:
        shutil.copytree(REPO_ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    result = subprocess.run(
        [*pip_wheel, "--wheel-dir", str(tmp_path / "dist"), str(source)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("colorlab-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert {"app.py", "models/hub.py", "trainer/train.py", "space/app_logic.py", "judge/evaluate.py"} <= names
    assert {"corpus/photos.py", "judge/ratings.py"} <= names
    assert {"trainer/configs/tiny.yaml", "corpus/photos_manifest.jsonl", "corpus/cutouts_manifest.jsonl"} <= names
    assert "space/models.yaml" in names
    dist_info = f"colorlab-{PROJECT['version']}.dist-info"
    assert {n.split("/")[0] for n in names} == {"app.py", *TOP_PACKAGES, dist_info}
    for script, target in SCRIPTS.items():
        assert f"{script} = {target}" in entry_points
