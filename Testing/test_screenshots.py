"""Resources/make_screenshots.py still runs and makes both pictures; the committed ones are what CMake points at.

Each picture is read back by the library that did not write it: the panel (written by Qt) with Pillow, the compare
view (the engine's preview, written by Pillow) with Qt.
"""

import importlib.util
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

QtGui = pytest.importorskip("PySide6.QtGui")

from UMedProtectLib.files.preview import PANEL_MIN_WIDTH  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "Resources" / "make_screenshots.py"
COMMITTED = ROOT / "Resources" / "Screenshots"
PICTURES = ("panel.png", "compare.png")
RAW = "https://raw.githubusercontent.com/UMedProtect/SlicerUMedProtect/main/"


def load_script():
    """The script as a module (it is not part of a package)."""
    spec = importlib.util.spec_from_file_location("make_screenshots", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_panel(path: Path) -> None:
    """A PNG that Pillow reads, the size of a module panel, with text and widgets on it (not a flat image)."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("RGB"))
    assert 300 <= width <= 1200 and 500 <= height <= 1600, (width, height)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) >= 50
    # Every band of rows across the panel holds something drawn: no section is left empty.
    bands = np.array_split(pixels.std(axis=(1, 2)), 8)
    assert all(band.max() > 10 for band in bands)


def check_compare(path: Path) -> None:
    """A PNG that Qt reads: the engine's three slices side by side."""
    image = QtGui.QImage(str(path))
    assert not image.isNull() and image.width() >= 3 * PANEL_MIN_WIDTH and image.height() < image.width()


def test_the_script_makes_both_pictures(tmp_path):
    out = tmp_path / "shots"
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--iterations", "1"], capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(PICTURES)  # no staging folder left behind
    check_panel(out / "panel.png")
    check_compare(out / "compare.png")


def test_the_committed_pictures_are_small_and_named_by_cmake():
    for name in PICTURES:
        assert (COMMITTED / name).stat().st_size < 300 * 1024, name
    check_panel(COMMITTED / "panel.png")
    check_compare(COMMITTED / "compare.png")
    urls = re.search(r'set\(EXTENSION_SCREENSHOTURLS "([^"]*)"\)', (ROOT / "CMakeLists.txt").read_text()).group(1)
    assert urls.split() == [f"{RAW}Resources/Screenshots/{name}" for name in PICTURES]


def test_every_custom_widget_needs_a_stand_in_of_its_declared_base():
    script = load_script()
    ui = ET.parse(script.UI_FILE).getroot()
    bases = script.declared_bases(ui)
    assert bases["qMRMLSegmentSelectorWidget"] == "QWidget"  # through qMRMLWidget
    script.check_stand_ins(ui)
    unknown = ET.fromstring("<ui><customwidgets><customwidget><class>qMRMLSliderWidget</class>"
                            "<extends>QWidget</extends></customwidget></customwidgets></ui>")
    with pytest.raises(SystemExit, match="qMRMLSliderWidget"):
        script.check_stand_ins(unknown)
    wrong = ET.fromstring("<ui><customwidgets><customwidget><class>qMRMLTableView</class>"
                          "<extends>QTreeView</extends></customwidget></customwidgets></ui>")
    with pytest.raises(SystemExit, match="QTreeView"):
        script.check_stand_ins(wrong)
