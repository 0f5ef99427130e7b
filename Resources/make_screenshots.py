"""Make the screenshots of the README and the Extensions Index from the code: the module panel and the compare view.

panel.png is the real module panel: UMedProtect/Resources/UI/UMedProtect.ui loaded by PySide6's QUiLoader on the
offscreen platform and captured with QWidget.grab(). The .ui names Slicer and CTK widgets that plain Qt does not
have; each is registered as a stand-in class of the same name, derived from the base class the .ui declares for it
(<customwidgets><extends>) and built from the plain Qt widgets the real one is made of (a combo box in a node
selector, a header button above a collapsible section), so that the layout, labels and defaults are the .ui's own.
The panel is shown as after protecting a CT with every default: three brain slices of the head CT of Debian's
invesalius-examples (the embedded sample study where that package is absent), its default budget written by the
module's own budget code (the engine's resolver, in HU and in grey levels of each standard window) and the metrics
table filled by its metrics code from the report of `umed-protect protect` on those slices.

compare.png is the engine's own preview (original, protected, difference) of the embedded sample study, written by
`umed-protect demo` into a temporary folder. The default is the demo with the fast preset, the shortest training
the panel offers, as is the head CT's protection; --iterations sets fewer iterations for a quick check of the script
(what the test does).

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
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

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


TABLE_ROW = 22  # pixels per row of the metrics table


class Session(NamedTuple):
    """What the panel shows: the study's node names, its image and region, and the report of its protection."""

    volume: str
    segmentation: str
    segment: str
    unit: str
    image: np.ndarray
    region: np.ndarray
    report: dict


def sample_session(folder: Path, iterations: Optional[int]) -> Session:
    """The embedded sample study and the report of `umed-protect demo` on it."""
    import json

    import SimpleITK as sitk

    from UMedProtectLib.cli.commands import DEMO_FILES
    from UMedProtectLib.files.sample import sample_paths

    run_engine(["demo", "--output-dir", str(folder)], iterations)
    image_path, label_path = sample_paths()
    volume, segmentation = (path.name.split(".")[0] for path in (image_path, label_path))  # Slicer's node names
    read = [sitk.GetArrayFromImage(sitk.ReadImage(str(path))) for path in (image_path, label_path)]
    return Session(volume, segmentation, "lateral ventricles", "", read[0], read[1] > 0,
                   json.loads((folder / DEMO_FILES["report"]).read_text()))


def ct_session(folder: Path, iterations: Optional[int]) -> Optional[Session]:
    """Three brain slices of Debian's head CT protected by `umed-protect protect` with every default but the
    training (the panel's default is the command line's); None without the package."""
    import json

    import SimpleITK as sitk

    from UMedProtectLib.evaluation.corpora import ct_lesions

    if not ct_lesions.SOURCE.is_file():
        return None
    hu, brain = ct_lesions.head_ct_slab()
    paths = {name: folder / f"head_ct{name}.nrrd" for name in ("", "_brain")}
    for array, path in zip((hu, brain), paths.values()):
        sitk.WriteImage(sitk.GetImageFromArray(array), str(path), True)
    report = folder / "head_ct_report.json"
    run_engine(["protect", "--image", str(paths[""]), "--label", str(paths["_brain"]), "--output",
                str(folder / "head_ct_protected.nrrd"), "--report", str(report)], iterations)
    return Session("head CT", "head CT brain", "brain", "HU", hu, brain > 0, json.loads(report.read_text()))


def show_session(panel: QtWidgets.QWidget, session: Session) -> None:
    """The panel as the module sets it up once the study is protected: the default budget as the module's own budget
    code states it, and the metrics table as its metrics code fills it."""
    from UMedProtectSlicer.budget import describeBudget, resolveBudget
    from UMedProtectSlicer.metrics import metricRows

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
    select(find("inputVolumeSelector").comboBox, ["None", session.volume], session.volume)
    select(find("inputSegmentationSelector").comboBox, ["None", session.segmentation], session.segmentation)
    select(find("segmentSelector").comboBox, [session.segment], session.segment)
    for role in ("protected", "difference"):  # the result nodes the run added
        select(find(f"{role}VolumeSelector").comboBox, ["None", f"{session.volume} {role}"], f"{session.volume} {role}")
    for name in ("labelValuesLabel", "labelValuesLineEdit"):  # shown for a label map, not a segmentation
        find(name).setVisible(False)
    budget, ct = resolveBudget(session.image, session.region)
    find("epsilonNativeLabel").setText("default: " + describeBudget(budget, ct, session.unit))
    find("epsilonSpinBox").setEnabled(False)  # the override is off
    find("protectButton").setEnabled(True)
    find("profilePathLineEdit").setEnabled(find("useProfileCheckBox").isChecked())
    find("progressBar").setVisible(False)  # shown while a run goes on
    rows = metricRows(session.report)
    model = QtGui.QStandardItemModel(len(rows), 2, panel)
    model.setHorizontalHeaderLabels(["Metric", "Value"])
    for index, (label, value) in enumerate(rows):
        model.setItem(index, 0, QtGui.QStandardItem(label))
        model.setItem(index, 1, QtGui.QStandardItem(value))
    table = find("metricsTableView")
    table.setModel(model)
    table.setWordWrap(False)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(TABLE_ROW)
    table.setColumnWidth(0, 390)
    table.horizontalHeader().setStretchLastSection(True)


def table_height(rows: List[Tuple[str, str]]) -> int:
    """The metrics table's height that shows the figures down to the mean shift (per window, texture), as one
    scrolls to them in Slicer."""
    shown = next((i for i, (label, _) in enumerate(rows) if label == "Mean change in the region"), len(rows) - 1) + 1
    return (shown + 1) * TABLE_ROW + 4  # the header is one row


def render_panel(session: Session) -> QtGui.QImage:
    """The module panel, loaded from the .ui with the stand-ins, showing `session`, captured offscreen."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    ui = ET.parse(UI_FILE).getroot()
    check_stand_ins(ui)
    # Left out: the connections that hand Slicer's scene to its widgets, and CTK's file filter flags (a set type
    # that only CTK's own class can read).
    ui.remove(ui.find("connections"))
    for widget in ui.iter("widget"):
        for flags in widget.findall("property[@name='filters']"):
            widget.remove(flags)
    from UMedProtectSlicer.metrics import metricRows

    table = next(w for w in ui.iter("widget") if w.get("name") == "metricsTableView")
    table.find("property[@name='minimumSize']/size/height").text = str(table_height(metricRows(session.report)))
    loader = QUiLoader()
    for cls in STAND_INS:
        loader.registerCustomWidget(cls)
    buffer = QtCore.QBuffer()
    buffer.setData(QtCore.QByteArray(ET.tostring(ui)))
    buffer.open(QtCore.QIODevice.ReadOnly)
    panel = loader.load(buffer)
    if panel is None:
        raise SystemExit(f"make_screenshots: Qt could not load {UI_FILE}: {loader.errorString()}")
    show_session(panel, session)
    panel.show()  # a widget shown once is polished: spin boxes write their values
    panel.resize(panel.sizeHint())  # adjustSize() would cap it at the offscreen screen's height
    app.processEvents()
    image = panel.grab().toImage()
    panel.close()
    return image


def run_engine(command: List[str], iterations: Optional[int]) -> None:
    """`umed-protect COMMAND` on the CPU, with the fast preset (the shortest the panel offers) or `iterations`."""
    from UMedProtectLib.cli.main import main

    training = ["--iterations", str(iterations)] if iterations is not None else ["--preset", "fast"]
    code = main([*command, "--device", "cpu", "--progress", "none", *training])
    if code != 0:
        raise SystemExit(code)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder [{DEFAULT_OUT}]")
    parser.add_argument("--iterations", type=int, default=None,
                        help="training iterations of the demo (a quick check) [the fast preset]")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        from UMedProtectLib.cli.commands import DEMO_FILES

        sample = sample_session(Path(scratch), args.iterations)
        panel = render_panel(ct_session(Path(scratch), args.iterations) or sample)
        preview = Path(scratch) / DEMO_FILES["preview"]
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
