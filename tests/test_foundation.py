"""Project-level guarantees: CLI basics, shipped data, and the core/GUI boundary."""

from __future__ import annotations

import ast
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from panns_core import __version__
from panns_core.cli import main
from panns_core.data import resource_path
from panns_core.labels import audioset_labels

ROOT = Path(__file__).resolve().parent.parent
LABELS_SHA256 = "cdd1049833c4b86127c2773ac0d14a2754b6a6d0d1798002ed5c66e699708429"


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "labels" in capsys.readouterr().out


def test_console_script_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "panns_core", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"panns-sed {__version__}"


def test_shipped_labels_are_the_reference_file() -> None:
    path = resource_path("class_labels_indices.csv")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == LABELS_SHA256
    labels = audioset_labels()
    assert len(labels) == 527
    assert labels.by_index(0).name == "Speech"
    assert labels.by_name("dog").index == 74
    assert labels.by_mid("/m/0bt9lr").name == "Dog"


def test_labels_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["labels", "--grep", "bark"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "Bark" in [line.split("\t")[2] for line in lines]


def test_unknown_label_message_says_what_to_do() -> None:
    from panns_core.errors import PannsError

    with pytest.raises(PannsError, match="panns-sed labels"):
        audioset_labels().by_name("no such sound")


CORE_IMPORT_CHECK = r"""
import importlib, pkgutil, sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"PySide6", "pyqtgraph", "shiboken6", "app"}:
            raise ImportError(f"panns_core imported {name}")
        return None

sys.meta_path.insert(0, Block())
import panns_core.cli
assert "torch" not in sys.modules, "importing the CLI must not import torch"
panns_core.cli.build_parser()
assert "torch" not in sys.modules, "building the CLI parser must not import torch"
import panns_core
for info in pkgutil.walk_packages(panns_core.__path__, "panns_core."):
    if info.name.endswith("__main__"):
        continue
    importlib.import_module(info.name)
print("ok")
"""


@pytest.mark.slow
def test_core_never_imports_qt_and_cli_is_light() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CORE_IMPORT_CHECK], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")



# ------------------------------------------------------------------ import contracts

QT_AND_APP = ("PySide6", "pyqtgraph", "shiboken6", "app")

#: (package, modules it must never import). Checked statically on every import
#: statement of the package (lazy ones inside functions too) and, at import time, on
#: sys.modules after importing each of its modules in a fresh interpreter.
IMPORT_CONTRACTS = [
    # panns_core as a whole, so detection, hub, annotations, evaluation... included
    ("panns_core", QT_AND_APP),
    ("panns_core.models", ("panns_core.annotations",)),
    ("panns_core.audio", ("panns_core.models",)),
]

#: Forbidden at import time only (lazy imports inside functions are the point).
IMPORT_TIME_CONTRACTS = [
    *IMPORT_CONTRACTS,
    ("panns_core.cli", ("torch", "ray")),
    # Ray is an optional extra: importing the cluster code needs none of it
    ("panns_core.cluster", ("ray", "torch")),
]


def _imported_names(path: Path, module: str) -> list[tuple[str, int]]:
    """Absolute names imported by one source file: ``import a.b`` -> a.b, ``from .x
    import y`` -> <package>.x and <package>.x.y, ``importlib.import_module("a")`` -> a."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def resolve(name: str | None, level: int) -> str:
        if not level:
            return name or ""
        parts = package.split(".")
        base = parts[: len(parts) - level + 1]
        return ".".join([*base, name] if name else base)

    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(node.module, node.level)
            names.append((base, node.lineno))
            names += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            target = node.args[0].value
            level = len(target) - len(target.lstrip("."))
            names.append((resolve(target[level:] or None, level), node.lineno))
    return names


def _violations(package: str, forbidden: tuple[str, ...], root: Path = ROOT) -> list[str]:
    directory = root.joinpath(*package.split("."))
    found = []
    for path in sorted(directory.rglob("*.py")):
        relative = path.relative_to(root).with_suffix("")
        module = ".".join(relative.parts).removesuffix(".__init__")
        for name, line in _imported_names(path, module):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(root)}:{line} imports {name}")
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"), IMPORT_CONTRACTS, ids=[c[0] for c in IMPORT_CONTRACTS]
)
def test_import_statements_respect_the_contracts(package: str, forbidden: tuple) -> None:
    assert _violations(package, forbidden) == []


def test_the_static_import_scan_catches_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The scan fails when it should: a lazy relative import and an import_module call."""
    package = tmp_path / "panns_core" / "models"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from ..labels import audioset_labels\n")
    (package / "bad.py").write_text(
        "import importlib\n\n"
        "def f():\n"
        "    from ..annotations import store\n"
        "    return importlib.import_module('PySide6.QtCore')\n"
    )
    assert _violations("panns_core.models", ("panns_core.annotations",), tmp_path) == [
        "panns_core/models/bad.py:4 imports panns_core.annotations",
        "panns_core/models/bad.py:4 imports panns_core.annotations.store",
    ]
    assert _violations("panns_core", QT_AND_APP, tmp_path) == [
        "panns_core/models/bad.py:5 imports PySide6.QtCore"
    ]


IMPORT_TIME_CHECK = r"""
import importlib, pkgutil, sys
package, forbidden = sys.argv[1], tuple(sys.argv[2:])
root = importlib.import_module(package)
for info in pkgutil.walk_packages(root.__path__, package + "."):
    if not info.name.endswith("__main__"):
        importlib.import_module(info.name)
bad = sorted(m for m in sys.modules if any(m == f or m.startswith(f + ".") for f in forbidden))
print(" ".join(bad) or "ok")
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("package", "forbidden"), IMPORT_TIME_CONTRACTS, ids=[c[0] for c in IMPORT_TIME_CONTRACTS]
)
def test_importing_a_package_respects_the_contracts(package: str, forbidden: tuple) -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_TIME_CHECK, package, *forbidden],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "ok", f"{package} imported {result.stdout}"


@pytest.mark.slow
def test_wheel_ships_resources(tmp_path: Path) -> None:
    """A non-editable install must find panns_core/data/: the wheel carries them."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("panns_annotator-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "panns_core/data/class_labels_indices.csv" in names
    assert "panns_core/data/checkpoints.json" in names
    assert "panns_core/data/demo.flac" in names
    assert "panns_core/data/icons/panns-annotator.svg" in names
    assert "app/__init__.py" in names or not (ROOT / "app" / "__init__.py").exists()
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))
    ).decode()
    assert "panns-sed = panns_core.cli:main" in entry_points
    assert "panns-annotator = app.main:main" in entry_points
