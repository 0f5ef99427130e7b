"""Make the screenshots of the README and the Extensions Index from the code: the module panel and the compare view.

panel.png is the real module panel: UMedProtect/Resources/UI/UMedProtect.ui loaded by PySide6's QUiLoader on the
offscreen platform and captured with QWidget.grab(). The .ui names Slicer and CTK widgets that plain Qt does not
have; each is registered as a stand-in class of the same name, derived from the base class the .ui declares for it
(<customwidgets><extends>) and built from the plain Qt widgets the real one is made of (a combo box in a node
selector, a header button above a collapsible section), so that the layout, labels and defaults are the .ui's own.
The panel is shown as after loading the embedded sample study: its volume and segmentation selected, the budget in
the volume's units written by the module's own budget code.

compare.png is the engine's own preview (original, protected, difference) of the embedded sample study, written by
`umed-protect demo` into a temporary folder. The default is the demo with the fast preset, the shortest training
the panel offers; --iterations sets fewer iterations for a quick check of the script (what the test does).

    python Resources/make_screenshots.py [--out DIR] [--iterations N]
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
UI_FILE = ROOT / "UMedProtect" / "Resources" / "UI" / "UMedProtect.ui"
MODULE_FILE = ROOT / "UMedProtect" / "UMedProtect.py"
DEFAULT_OUT = ROOT / "Resources" / "Screenshots"

for folder in (ROOT, ROOT / "UMedProtect"):  # the engine, and the module's helpers as Slicer puts them on sys.path
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402
from PySide6.QtUiTools import QUiLoader  # noqa: E402

from UMedProtectLib.files.transaction import OutputTransaction  # noqa: E402


class qMRMLWidget(QtWidgets.QWidget):
    """Slicer's base of widgets that hold an MRML scene: a plain widget until it is given one."""


class ctkCollapsibleButton(QtWidgets.QWidget):
    """CTK's collapsible section: a push button with an arrow and the title, the section's widgets below it."""

    HEADER = 26

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None):
        super().__init__(parent)
        self._text = ""
        self._collapsed = False
        self.setContentsMargins(6, self.HEADER + 4, 6, 4)

    def getText(self) -> str:
        return self._text

    def setText(self, text: str) -> None:
        self._text = text
        self.update()

    def isCollapsed(self) -> bool:
        return self._collapsed

    def setCollapsed(self, collapsed: bool) -> None:
        self._collapsed = collapsed
        for child in self.findChildren(QtWidgets.QWidget, options=QtCore.Qt.FindDirectChildrenOnly):
            child.setVisible(not collapsed)
        self.setContentsMargins(6, self.HEADER + 4, 6, 0 if collapsed else 4)
        self.setFixedHeight(self.HEADER + 4) if collapsed else self.setMaximumHeight(16777215)

    text = QtCore.Property(str, getText, setText)
    collapsed = QtCore.Property(bool, isCollapsed, setCollapsed)

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        painter = QtWidgets.QStylePainter(self)
        button = QtWidgets.QStyleOptionButton()
        button.initFrom(self)
        button.rect = QtCore.QRect(0, 0, self.width(), self.HEADER)
        painter.drawControl(QtWidgets.QStyle.CE_PushButtonBevel, button)
        arrow = QtWidgets.QStyleOption()
        arrow.initFrom(self)
        arrow.rect = QtCore.QRect(6, 6, self.HEADER - 12, self.HEADER - 12)
        painter.drawPrimitive(QtWidgets.QStyle.PE_IndicatorArrowRight if self._collapsed
                              else QtWidgets.QStyle.PE_IndicatorArrowDown, arrow)
        painter.drawText(QtCore.QRect(self.HEADER, 0, self.width() - self.HEADER, self.HEADER),
                         QtCore.Qt.AlignVCenter | QtCore.Qt.AlignLeft, self._text)
        if not self._collapsed:  # CTK frames the open section's contents
            painter.setPen(self.palette().color(QtGui.QPalette.Mid))
            painter.drawRect(self.rect().adjusted(0, self.HEADER, -1, -1))


def _holding(widget: QtWidgets.QWidget, *children: QtWidgets.QWidget) -> None:
    """Lay children out in a row that fills the widget, as the composite Slicer and CTK widgets do."""
    layout = QtWidgets.QHBoxLayout(widget)
    layout.setContentsMargins(0, 0, 0, 0)
    for child in children:
        layout.addWidget(child)


class qMRMLNodeComboBox(QtWidgets.QWidget):
    """Slicer's node selector: a combo box of the scene's nodes of the chosen types (None when nothing is chosen)."""

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None):
        super().__init__(parent)
        self.comboBox = QtWidgets.QComboBox(self)
        self.comboBox.addItem("None")
        _holding(self, self.comboBox)


class qMRMLSegmentSelectorWidget(qMRMLWidget):
    """Slicer's segment selector with the segmentation selector hidden: a checkable list of the segments chosen."""

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None):
        super().__init__(parent)
        self.comboBox = QtWidgets.QComboBox(self)
        _holding(self, self.comboBox)


class ctkPathLineEdit(QtWidgets.QWidget):
    """CTK's file chooser: an editable path and a browse button."""

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None):
        super().__init__(parent)
        self.comboBox = QtWidgets.QComboBox(self)
        self.comboBox.setEditable(True)
        browse = QtWidgets.QToolButton(self)
        browse.setText("...")
        _holding(self, self.comboBox, browse)


class ctkDirectoryButton(QtWidgets.QWidget):
    """CTK's folder chooser: a button that shows the chosen folder."""

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None):
        super().__init__(parent)
        self.button = QtWidgets.QPushButton(self)
        self.button.setIcon(self.style().standardIcon(QtWidgets.QStyle.SP_DirIcon))
        _holding(self, self.button)


class qMRMLTableView(QtWidgets.QTableView):
    """Slicer's view of a table node."""


STAND_INS = (qMRMLWidget, ctkCollapsibleButton, qMRMLNodeComboBox, qMRMLSegmentSelectorWidget, ctkPathLineEdit,
             ctkDirectoryButton, qMRMLTableView)


def declared_bases(ui: ET.Element) -> Dict[str, str]:
    """Custom widget class -> the Qt class it extends, as the .ui declares, through custom bases."""
    extends = {c.findtext("class"): c.findtext("extends") for c in ui.iter("customwidget")}
    bases = {}
    for name in extends:
        base = extends[name]
        while base in extends:
            base = extends[base]
        bases[name] = base
    return bases


def check_stand_ins(ui: ET.Element) -> None:
    """Every custom widget of the .ui has a stand-in derived from the Qt class the .ui says it extends."""
    stand_ins = {cls.__name__: cls for cls in STAND_INS}
    for name, base in declared_bases(ui).items():
        if name not in stand_ins:
            raise SystemExit(f"make_screenshots: the .ui uses {name}, which has no stand-in here; add one")
        if not issubclass(stand_ins[name], getattr(QtWidgets, base)):
            raise SystemExit(f"make_screenshots: the stand-in for {name} does not derive from {base}")


def module_tree() -> ast.Module:
    """UMedProtect.py, parsed: it imports Slicer's GUI, so it is read rather than imported."""
    return ast.parse(MODULE_FILE.read_text(encoding="utf-8"))


def device_choices(tree: ast.Module) -> List[str]:
    """The devices the module lists before it looks for GPUs."""
    function = next(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                    and node.name == "availableDevices")
    listed = next(node for node in ast.walk(function) if isinstance(node, ast.Assign)
                  and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "devices")
    return [label for label, _ in ast.literal_eval(listed.value)]


def parameter_choices(tree: ast.Module) -> Dict[str, Tuple[Optional[list], Any]]:
    """Parameter -> (its Choice's items or None, its Default) in the module's parameter node wrapper, evaluated
    with the engine's settings as the module evaluates them: what connectGui shows in a fresh scene."""
    from UMedProtectLib import settings
    from UMedProtectSlicer import export

    names: Dict[str, Any] = {"engineSettings": settings, "export": export}
    for node in tree.body:  # the module's own constants (the export formats), computed as it computes them
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
            names[node.targets[0].id] = eval(compile(ast.Expression(node.value), str(MODULE_FILE), "eval"), names)
    wrapper = next(node for node in tree.body if isinstance(node, ast.ClassDef) and any(
        isinstance(d, ast.Name) and d.id == "parameterNodeWrapper" for d in node.decorator_list))
    found = {}
    for field in wrapper.body:
        if not isinstance(field, ast.AnnAssign):
            continue
        calls = {call.func.id: call.args[0] for call in ast.walk(field.annotation)
                 if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.args}
        value = {name: eval(compile(ast.Expression(calls[name]), str(MODULE_FILE), "eval"), names)
                 for name in ("Choice", "Default") if name in calls}
        found[field.target.id] = (value.get("Choice"), value.get("Default"))
    return found


def select(combo: QtWidgets.QComboBox, items: List[str], current: str) -> None:
    """Fill a combo box and show one of its items."""
    combo.clear()
    combo.addItems([str(item) for item in items])
    combo.setCurrentText(str(current))


def show_sample_session(panel: QtWidgets.QWidget) -> None:
    """The panel as the module sets it up after the sample study is loaded and before Protect is pressed."""
    import SimpleITK as sitk

    from UMedProtectLib import settings
    from UMedProtectLib.method.intensity import robust_range
    from UMedProtectLib.files.sample import sample_paths
    from UMedProtectSlicer.budget import describeBudget, intensitySpan

    tree = module_tree()
    fields = parameter_choices(tree)
    for widget in panel.findChildren(QtWidgets.QWidget):
        choices, default = fields.get(widget.property("SlicerParameterName"), (None, None))
        if isinstance(widget, QtWidgets.QComboBox) and choices is not None:
            select(widget, choices, default)
        elif isinstance(widget, QtWidgets.QCheckBox):
            widget.setChecked(bool(default))
    find = lambda name: panel.findChild(QtWidgets.QWidget, name)  # noqa: E731
    devices = device_choices(tree)
    select(find("deviceComboBox"), devices, devices[0])
    image_path, label_path = sample_paths()
    volume, segmentation = (path.name.split(".")[0] for path in (image_path, label_path))  # Slicer's node names
    select(find("inputVolumeSelector").comboBox, ["None", volume], volume)
    select(find("inputSegmentationSelector").comboBox, ["None", segmentation], segmentation)
    select(find("segmentSelector").comboBox, ["lateral ventricles"], "lateral ventricles")
    for name in ("labelValuesLabel", "labelValuesLineEdit"):  # shown for a label map, not a segmentation
        find(name).setVisible(False)
    # The volume is shown in its robust range, the window the compare view reads it with.
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(image_path)))
    low, high = robust_range(array, settings.PERCENTILES)
    find("epsilonNativeLabel").setText("= " + describeBudget(find("epsilonSpinBox").value(), intensitySpan(array), "",
                                                             ((low + high) / 2, high - low)))
    find("protectButton").setEnabled(True)
    find("profilePathLineEdit").setEnabled(find("useProfileCheckBox").isChecked())
    for name in ("progressBar", "metricsTableView"):  # hidden until a run starts or a result exists
        find(name).setVisible(False)


def render_panel() -> QtGui.QImage:
    """The module panel, loaded from the .ui with the stand-ins and captured offscreen."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    ui = ET.parse(UI_FILE).getroot()
    check_stand_ins(ui)
    # Left out: the connections that hand Slicer's scene to its widgets, and CTK's file filter flags (a set type
    # that only CTK's own class can read).
    ui.remove(ui.find("connections"))
    for widget in ui.iter("widget"):
        for flags in widget.findall("property[@name='filters']"):
            widget.remove(flags)
    loader = QUiLoader()
    for cls in STAND_INS:
        loader.registerCustomWidget(cls)
    buffer = QtCore.QBuffer()
    buffer.setData(QtCore.QByteArray(ET.tostring(ui)))
    buffer.open(QtCore.QIODevice.ReadOnly)
    panel = loader.load(buffer)
    if panel is None:
        raise SystemExit(f"make_screenshots: Qt could not load {UI_FILE}: {loader.errorString()}")
    show_sample_session(panel)
    panel.show()  # a widget shown once is polished: spin boxes write their values
    panel.adjustSize()
    app.processEvents()
    image = panel.grab().toImage()
    panel.close()
    return image


def run_demo(folder: Path, iterations: Optional[int]) -> Path:
    """The engine's preview of the embedded sample study, written by `umed-protect demo` into folder."""
    from UMedProtectLib.cli.main import main
    from UMedProtectLib.cli.commands import DEMO_FILES

    training = ["--iterations", str(iterations)] if iterations is not None else ["--preset", "fast"]
    code = main(["demo", "--output-dir", str(folder), "--device", "cpu", "--progress", "none", *training])
    if code != 0:
        raise SystemExit(code)
    return folder / DEMO_FILES["preview"]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder [{DEFAULT_OUT}]")
    parser.add_argument("--iterations", type=int, default=None,
                        help="training iterations of the demo (a quick check) [the fast preset]")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    panel = render_panel()
    with tempfile.TemporaryDirectory() as scratch:
        preview = run_demo(Path(scratch), args.iterations)
        with OutputTransaction() as transaction:
            if not panel.save(str(transaction.stage(args.out / "panel.png")), "PNG"):
                raise SystemExit("make_screenshots: Qt could not write panel.png")
            transaction.stage(args.out / "compare.png").write_bytes(preview.read_bytes())
            written = transaction.commit()
    for path in written:
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
