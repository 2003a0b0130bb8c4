"""Packaging glue that pyproject.toml cannot express: ship the top-level ``resources/``
folder inside the installed ``panns_core`` as ``panns_core._resources``."""

from pathlib import Path

from setuptools import find_packages, setup

RESOURCE_DIRS = sorted(
    p.relative_to("resources").as_posix()
    for p in Path("resources").rglob("*")
    if p.is_dir() and "__" not in p.name
)

setup(
    packages=[
        *find_packages(include=["app", "app.*", "panns_core", "panns_core.*"]),
        "panns_core._resources",
        *(f"panns_core._resources.{d.replace('/', '.')}" for d in RESOURCE_DIRS),
    ],
    package_dir={"panns_core._resources": "resources"},
)
