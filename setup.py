"""Packaging glue that pyproject.toml cannot express: ship the top-level ``resources/``
folder inside the installed ``panns_core`` as ``panns_core._resources``."""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["app", "app.*", "panns_core", "panns_core.*"]),
        "panns_core._resources",
    ],
    package_dir={"panns_core._resources": "resources"},
)
