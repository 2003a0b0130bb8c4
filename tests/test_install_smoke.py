"""The README's install command gives every feature; a missing piece is one line.

The full proof runs in CI: ``.ci/run`` installs the project without extras into a clean
venv and runs ``.ci/smoke.py`` there (import a checkpoint, detect, evaluate, train, start
the window). These tests hold the pieces that make it so.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from panns_core.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_what_evaluate_and_training_import_is_a_main_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    main_deps = " ".join(project["dependencies"])
    for package in ("sed_eval", "sed_scores_eval", "setuptools<81"):
        assert package in main_deps
    assert not any("sed_eval" in d for d in project["optional-dependencies"]["dev"])


def test_ray_is_an_extra_that_ci_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("ray") for d in project["dependencies"])
    assert any(d.startswith("ray>=") for d in project["optional-dependencies"]["cluster"])
    assert '".[dev,cluster]"' in (ROOT / ".ci" / "run").read_text()


def test_ci_runs_the_smoke_script_in_a_clean_venv() -> None:
    run = (ROOT / ".ci" / "run").read_text()
    assert "-m venv" in run and "pip install -q .\n" in run and ".ci/smoke.py" in run
    assert (ROOT / ".ci" / "smoke.py").is_file()


@pytest.mark.parametrize("module", ["sed_eval", "pkg_resources"])
def test_a_missing_package_is_one_line_naming_what_to_install(
    module: str, monkeypatch, tmp_path: Path, capsys
) -> None:
    reference = tmp_path / "r.tsv"
    reference.write_text("filename\tonset\toffset\tevent_label\na.wav\t0\t1\tDog\n")
    for name in list(sys.modules):
        if name == module or name.startswith((f"{module}.", "sed_eval", "dcase_util")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # import raises ModuleNotFoundError
    before = set(sys.modules)
    try:
        code = main(["evaluate", "--reference", str(reference), "--estimated", str(reference)])
    finally:  # drop what the failed import left half-made; monkeypatch restores the rest
        for name in set(sys.modules) - before:
            del sys.modules[name]
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    wanted = "setuptools<81" if module == "pkg_resources" else module
    assert f"pip install '{wanted}'" in err
