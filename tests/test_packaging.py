"""The package as built: licence metadata (PEP 639), the licence files and the bundled models in the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")

REPO = Path(__file__).resolve().parents[1]


def test_build_requires_a_setuptools_that_knows_licence_expressions() -> None:
    from packaging.requirements import Requirement

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    (setuptools,) = [Requirement(r) for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    assert "76.9" not in setuptools.specifier and "77.0" in setuptools.specifier  # PEP 639 support: 77
    assert pyproject["project"]["license"] == "MIT"
    assert (REPO / "LICENSE").read_text().startswith("MIT License")


@pytest.mark.slow
def test_wheel_ships_licences_and_the_face_detector(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", minversion="77")
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    for package in ("fomm", "live", "export", "engines"):
        if (REPO / package).is_dir():
            shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    script = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "dist")],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    wheel = tmp_path / "dist" / result.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: MIT" in metadata.splitlines()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert any(n.endswith(".dist-info/licenses/fomm/assets/NOTICE.md") for n in names)
    assert "fomm/assets/face_detection_yunet_2023mar_int8bq.onnx" in names
