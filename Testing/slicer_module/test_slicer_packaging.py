"""The extension build files follow Slicer's templates and list every file; the dependency list matches the engine."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import slicer_testing  # noqa: F401  (puts UMedProtect/ on sys.path)

from UMedProtectSlicer.dependencies import (REQUIREMENTS, SLICER_BUNDLED, MissingPackage, describeMissing,
                                            distributionName, missingPackages, satisfies)
from UMedProtectSlicer.errors import UserFacingError
from UMedProtectSlicer.install import InstallPlan, ensureDependencies, planInstall

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "UMedProtect"
ENGINE = ROOT / "UMedProtectLib"
# Configures the engine's CMake file with a stand-in for Slicer's install macro that records what it would install.
RECORDING_PROJECT = """cmake_minimum_required(VERSION 3.16)
project(EnginePackaging NONE)
function(slicerMacroBuildScriptedModule)
  cmake_parse_arguments(BUILD "WITH_SUBDIR" "NAME" "SCRIPTS;RESOURCES" ${ARGN})
  foreach(kind SCRIPTS RESOURCES)
    string(REPLACE ";" "\\n" listed "${BUILD_${kind}}")
    file(WRITE ${CMAKE_BINARY_DIR}/${kind}.txt "${listed}\\n")
  endforeach()
endfunction()
add_subdirectory(${ENGINE} engine)
"""


def cmake_list(text: str, variable: str) -> list:
    """Items of set(VARIABLE ...) in a CMake file, with ${MODULE_NAME} expanded."""
    match = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert match, f"set({variable} ...) not found"
    return [item.replace("${MODULE_NAME}", "UMedProtect") for item in match.group(1).split()]


def test_module_cmake_lists_every_script_and_resource():
    text = (MODULE / "CMakeLists.txt").read_text()
    scripts = set(cmake_list(text, "MODULE_PYTHON_SCRIPTS"))
    resources = set(cmake_list(text, "MODULE_PYTHON_RESOURCES"))
    on_disk_scripts = {str(p.relative_to(MODULE)) for p in MODULE.rglob("*.py") if "__pycache__" not in p.parts}
    on_disk_resources = {str(p.relative_to(MODULE)) for p in (MODULE / "Resources").rglob("*") if p.is_file()}
    assert scripts == on_disk_scripts
    assert resources == on_disk_resources
    assert "slicerMacroBuildScriptedModule(" in text and "WITH_GENERIC_TESTS" in text
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in text


def test_engine_is_packaged_beside_the_module_as_a_plain_package():
    text = (ROOT / "UMedProtectLib" / "CMakeLists.txt").read_text()
    assert "set(MODULE_NAME UMedProtectLib)" in text
    # WITH_SUBDIR installs into a folder named after this directory: it must be the package name.
    assert "WITH_SUBDIR" in text and (ROOT / "UMedProtectLib" / "__init__.py").is_file()
    assert "GLOB_RECURSE MODULE_PYTHON_SCRIPTS" in text and "sample_data/*" in text
    assert "WITH_GENERIC_TESTS" not in text  # it is a package, not a module with a widget


def test_extension_installs_the_engine_without_the_evaluation(tmp_path):
    """Every engine file but none of evaluation/ (a research harness with its own dependencies); the engine so
    installed runs, and its `evaluate` says in one line that the evaluation is not installed."""
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not installed")
    (tmp_path / "CMakeLists.txt").write_text(RECORDING_PROJECT)
    subprocess.run([cmake, "-S", str(tmp_path), "-B", str(tmp_path / "build"), f"-DENGINE={ENGINE}"], check=True,
                   capture_output=True)
    installed = {kind: (tmp_path / "build" / f"{kind}.txt").read_text().split() for kind in ("SCRIPTS", "RESOURCES")}
    on_disk = {str(p.relative_to(ENGINE)) for p in ENGINE.rglob("*.py") if "__pycache__" not in p.parts}
    assert any(name.startswith("evaluation/") for name in on_disk)
    assert set(installed["SCRIPTS"]) == {name for name in on_disk if not name.startswith("evaluation/")}
    # Lay the files out as Slicer installs them (WITH_SUBDIR: a folder named UMedProtectLib) and run that copy.
    site = tmp_path / "site"
    for name in installed["SCRIPTS"] + installed["RESOURCES"]:
        (site / "UMedProtectLib" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ENGINE / name, site / "UMedProtectLib" / name)
    # A development install (pip install -e) hooks the checkout's files in; Slicer's Python has no such hook.
    script = ("import sys; "
              "sys.meta_path[:] = [f for f in sys.meta_path if not f.__module__.startswith('__editable__')]; "
              "import UMedProtectLib; from UMedProtectLib.cli.main import main; print(UMedProtectLib.__file__); "
              "sys.exit(main(sys.argv[1:]))")
    environment = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-c", script, "evaluate", "--help"], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.startswith(str(site / "UMedProtectLib"))
    assert done.returncode == 2 and "evaluation" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = subprocess.run([sys.executable, "-c", script, "protect", "--help"], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "--epsilon" in done.stdout


def test_extension_cmake_follows_the_template():
    text = (ROOT / "CMakeLists.txt").read_text()
    for variable in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                     "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS"):
        assert re.search(rf"set\({variable} ", text), variable
    assert 'set(EXTENSION_DEPENDS "PyTorch")' in text
    assert "find_package(Slicer REQUIRED)" in text and "include(${Slicer_USE_FILE})" in text
    assert "include(${Slicer_EXTENSION_GENERATE_CONFIG})" in text and "include(${Slicer_EXTENSION_CPACK})" in text
    assert re.search(r'MINIMUM_SLICER_VERSION "5\.4"', text) and "VERSION_LESS" in text
    assert text.index("add_subdirectory(UMedProtectLib)") < text.index("add_subdirectory(UMedProtect)")


def test_icons_are_real_images():
    for path in (ROOT / "Resources" / "UMedProtect.png", MODULE / "Resources" / "Icons" / "UMedProtect.png"):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (128, 128)
            pixels = np.asarray(image.convert("RGBA")).reshape(-1, 4)
            assert len(np.unique(pixels, axis=0)) >= 5  # drawn, not a flat placeholder


def test_module_file_imports_nothing_heavy_at_load_time():
    """Nothing is installed or imported at import time: torch and the engine load only when Protect runs."""
    text = (MODULE / "UMedProtect.py").read_text()
    top_level = [line for line in text.splitlines() if re.match(r"(import|from) ", line)]
    assert not [line for line in top_level if re.search(r"\b(torch|UMedProtectLib|numpy|SimpleITK)\b", line)]
    assert "pip_install" not in "\n".join(top_level)
    helpers = "\n".join(p.read_text() for p in (MODULE / "UMedProtectSlicer").glob("*.py"))
    assert not re.search(r"^\s*import qt\b|^\s*from qt\b|^\s*import torch\b", helpers, re.M)


def test_requirements_match_the_engine_dependencies():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    engine = {distributionName(r).lower(): r for r in pyproject["project"]["dependencies"]}
    mine = {distributionName(r).lower(): r for r in REQUIREMENTS.values()}
    # highdicom reads SEG files, which the panel never hands the engine; it needs pydicom 3, Slicer bundles 2.4.
    assert mine == {name: r for name, r in engine.items() if name != "highdicom"}
    assert satisfies("2.4.3", REQUIREMENTS["pydicom"]), "the pydicom 3D Slicer bundles must do"


def test_the_install_plan_never_replaces_a_package_slicer_ships():
    old_pydicom = MissingPackage("pydicom", "pydicom>=3.0,<4", "2.4.3")
    scipy = MissingPackage("scipy", REQUIREMENTS["scipy"], "1.7.3")
    with pytest.raises(UserFacingError, match=r"pydicom>=3.0,<4 \(2.4.3 installed\), which 3D Slicer ships"):
        planInstall([scipy, old_pydicom], pytorchExtension=True)
    for name in SLICER_BUNDLED:  # installed in any version: refused; absent (outside Slicer): installed like the rest
        with pytest.raises(UserFacingError, match="does not replace them"):
            planInstall([MissingPackage(name, REQUIREMENTS[name], "0.1")], pytorchExtension=False)
        absent = MissingPackage(name, REQUIREMENTS[name], None)
        assert planInstall([absent], pytorchExtension=False).pipPackages == [absent]


def test_version_checks():
    assert satisfies("2.3.1+cu121", "torch>=2.0,<3")
    assert not satisfies("1.13.1", "torch>=2.0,<3")
    assert not satisfies("3.0.0", "torch>=2.0,<3")
    assert satisfies("0.20", "scikit-image>=0.20")
    assert distributionName("scikit-image>=0.20") == "scikit-image"


def test_missing_packages_are_found_without_importing_them():
    missing = missingPackages({"numpy": "numpy>=1.0", "umed_no_such_package": "umed-no-such-package>=1",
                               "scipy": "scipy>=999"})
    assert [m.importName for m in missing] == ["umed_no_such_package", "scipy"]
    assert missing[0].installed is None and missing[1].installed
    text = describeMissing([MissingPackage("torch", "torch>=2.0,<3", None),
                            MissingPackage("scipy", "scipy>=1.8", "1.7.3")])
    assert text == "torch>=2.0,<3 (not installed), scipy>=1.8 (1.7.3 installed)"
    assert missingPackages() == []  # this environment has everything the engine needs


def test_install_plan_sends_torch_through_the_pytorch_extension_when_present():
    torch = MissingPackage("torch", REQUIREMENTS["torch"], None)
    scipy = MissingPackage("scipy", REQUIREMENTS["scipy"], "1.7.3")
    through = planInstall([torch, scipy], pytorchExtension=True)
    assert through.torchVersionRequirement == ">=2.0,<3" and through.pipRequirements() == ["scipy>=1.8"]
    alone = planInstall([torch, scipy], pytorchExtension=False)
    assert alone.torchVersionRequirement is None and alone.pipRequirements() == ["torch>=2.0,<3", "scipy>=1.8"]
    assert planInstall([scipy], pytorchExtension=True) == InstallPlan(None, [scipy])


def test_nothing_to_install_here_so_the_application_is_never_asked():
    """ensureDependencies imports slicer.util's dialogs and pip only when something is missing."""
    assert ensureDependencies(askConfirmation=True) is False
