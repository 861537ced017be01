"""The declared dependencies match the imports: every third-party package that linfit/
imports is declared in pyproject.toml (dependencies or an extra), and every declared runtime
dependency is imported by linfit/ or bench/. A short script with ast and tomllib, in place
of deptry (which would be one more tool to install)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Import names whose distribution is named otherwise (importlib.metadata's
# packages_distributions() would say so only where the package is installed).
DISTRIBUTION_OF_IMPORT = {"pytest_benchmark": "pytest-benchmark", "ml_dtypes": "ml-dtypes"}
# Extras of tools run from the command line, never imported.
TOOL_EXTRAS = ("dev", "actionlint")
# The extra that only the test suite imports.
TEST_EXTRA = "test"


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalize(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0])


def imported_distributions(folder: Path) -> dict[str, set[str]]:
    """The third-party distributions that the Python files under ``folder`` import
    (absolute imports; the standard library and linfit left out), with the files."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top == "linfit":
                    continue
                found.setdefault(normalize(DISTRIBUTION_OF_IMPORT.get(top, top)),
                                 set()).add(str(path.relative_to(folder)))
    return found


def declared() -> tuple[set[str], set[str]]:
    """(runtime: dependencies and the backend extras, tools: the tool extras)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {requirement_name(r) for r in project["dependencies"]}
    tools = set()
    for extra, requirements in project["optional-dependencies"].items():
        if extra == TEST_EXTRA:
            continue
        target = tools if extra in TOOL_EXTRAS else runtime
        target.update(requirement_name(r) for r in requirements)
    return runtime, tools


def test_every_import_of_linfit_is_declared() -> None:
    runtime, _ = declared()
    undeclared = {name: sorted(files) for name, files in
                  imported_distributions(ROOT / "linfit").items() if name not in runtime}
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_every_runtime_dependency_is_imported() -> None:
    runtime, _ = declared()
    used = set(imported_distributions(ROOT / "linfit")) | set(
        imported_distributions(ROOT / "bench"))
    assert not runtime - used, f"declared but never imported: {sorted(runtime - used)}"


def test_the_test_extra_is_what_the_tests_import() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    test_only = {requirement_name(r) for r in project["optional-dependencies"][TEST_EXTRA]}
    runtime, _ = declared()
    imported_by_tests = set(imported_distributions(ROOT / "tests"))
    assert test_only <= imported_by_tests, sorted(test_only - imported_by_tests)
    assert not test_only & runtime, sorted(test_only & runtime)


def test_keras_and_the_next_tensorflow_are_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = {requirement_name(r): r for r in project["dependencies"]}
    assert "keras" in requirements
    assert "<2.22" not in requirements["tensorflow"].replace(" ", "")
    ruff = [r for r in project["optional-dependencies"]["dev"] if requirement_name(r) == "ruff"]
    assert ruff and "<" in ruff[0]


def test_the_checker_sees_an_undeclared_import(tmp_path: Path) -> None:
    # The check can fail: imports of packages pyproject.toml does not declare are found.
    (tmp_path / "module.py").write_text("import os\nimport yaml.loader\nfrom requests import get\n"
                                        "from . import sibling\nimport linfit.stats\n")
    found = imported_distributions(tmp_path)
    assert set(found) == {"yaml", "requests"}
    runtime, _ = declared()
    assert not set(found) & runtime
    assert normalize("Pytest_Benchmark") == "pytest-benchmark"
    assert requirement_name("ml-dtypes>=0.3.1,<1") == "ml-dtypes"
