"""UMedProtect.ui parsed by a real Qt (PySide6 QUiLoader, offscreen) and checked against UMedProtect.py.

The module file imports Slicer-only packages, so it is read with `ast` instead of imported.
"""

import ast
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
QtWidgets = pytest.importorskip("PySide6.QtWidgets")
from PySide6.QtCore import QBuffer, QByteArray, QIODevice  # noqa: E402
from PySide6.QtUiTools import QUiLoader  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
UI_FILE = ROOT / "UMedProtect" / "Resources" / "UI" / "UMedProtect.ui"
MODULE_FILE = ROOT / "UMedProtect" / "UMedProtect.py"

# Slicer/CTK classes -> the Qt class each one is (or behaves like) for loading the layout with plain Qt.
QT_STAND_INS = {
    "ctkCollapsibleButton": "QGroupBox",
    "ctkDirectoryButton": "QPushButton",
    "ctkPathLineEdit": "QLineEdit",
    "qMRMLNodeComboBox": "QComboBox",
    "qMRMLWidget": "QWidget",
    "qMRMLSegmentSelectorWidget": "QWidget",
    "qMRMLTableView": "QTableView",
}
# Which widget classes the parameter node wrapper can bind to which field types (Slicer's GUI connectors).
CONNECTORS = {
    "int": {"QSpinBox", "QSlider"},
    "float": {"QDoubleSpinBox", "ctkSliderWidget", "ctkDoubleSpinBox", "ctkDoubleSlider"},
    "bool": {"QCheckBox", "ctkCheckBox"},
    "str": {"QLineEdit", "QTextEdit", "QLabel"},
    "str+Choice": {"QComboBox", "ctkComboBox"},
    "Path": {"ctkPathLineEdit", "ctkDirectoryButton"},
    "node": {"qMRMLNodeComboBox", "qMRMLSubjectHierarchyTreeView"},
}
WRAPPER_API = {"connectGui", "disconnectGui", "parameterNode", "StartModify", "EndModify"}


@pytest.fixture(scope="module")
def ui_tree():
    return ET.parse(UI_FILE).getroot()


@pytest.fixture(scope="module")
def module_ast():
    return ast.parse(MODULE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def loaded(ui_tree):
    """The panel built by QUiLoader, with Slicer's classes replaced by their Qt stand-ins."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    root = ET.fromstring(ET.tostring(ui_tree))
    for widget in root.iter("widget"):
        widget.set("class", QT_STAND_INS.get(widget.get("class"), widget.get("class")))
    for section in ("customwidgets", "connections"):  # Slicer-only classes and signals
        element = root.find(section)
        if element is not None:
            root.remove(element)
    buffer = QBuffer()
    buffer.setData(QByteArray(ET.tostring(root)))
    buffer.open(QIODevice.ReadOnly)
    loader = QUiLoader()
    panel = loader.load(buffer)
    assert panel is not None, loader.errorString()
    yield panel
    panel.deleteLater()
    app.processEvents()


def widget_classes(ui_tree):
    return {w.get("name"): w.get("class") for w in ui_tree.iter("widget")}


def parameter_bindings(ui_tree):
    """widget name -> SlicerParameterName from the .ui."""
    bindings = {}
    for widget in ui_tree.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bindings[widget.get("name")] = prop.findtext("string")
    return bindings


def ui_names_used(module_ast):
    """Every X in self.ui.X in the module file."""
    names = set()
    for node in ast.walk(module_ast):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "ui"
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"):
            names.add(node.attr)
    return names


def wrapper_fields(module_ast):
    """field name -> annotation source of the @parameterNodeWrapper class."""
    for node in ast.walk(module_ast):
        if isinstance(node, ast.ClassDef) and any(
                (isinstance(d, ast.Name) and d.id == "parameterNodeWrapper") for d in node.decorator_list):
            return {item.target.id: ast.unparse(item.annotation) for item in node.body
                    if isinstance(item, ast.AnnAssign)}
    raise AssertionError("no @parameterNodeWrapper class in UMedProtect.py")


def field_kind(annotation: str) -> str:
    """Which connector family a field annotation needs."""
    if "vtkMRML" in annotation:
        return "node"
    if "Path" in annotation:
        return "Path"
    for kind in ("int", "float", "bool", "str"):
        if annotation == kind or annotation.startswith(f"Annotated[{kind},"):
            return kind + ("+Choice" if kind == "str" and "Choice(" in annotation else "")
    return "other"


def test_qt_loads_the_panel_with_every_named_widget(loaded, ui_tree):
    names = {name for name in widget_classes(ui_tree)}
    found = {w.objectName() for w in loaded.findChildren(QtWidgets.QWidget)} | {loaded.objectName()}
    assert names <= found, f"Qt did not create: {sorted(names - found)}"
    assert loaded.objectName() == "UMedProtect"


def test_every_widget_the_code_uses_exists(loaded, module_ast):
    used = ui_names_used(module_ast)
    assert {"protectButton", "progressBar", "statusLabel", "compareButton", "exportButton"} <= used
    present = {w.objectName() for w in loaded.findChildren(QtWidgets.QWidget)}
    assert used <= present, f"UMedProtect.py uses widgets missing from the .ui: {sorted(used - present)}"


def test_every_slicer_parameter_name_is_a_field_of_a_compatible_type(loaded, ui_tree, module_ast):
    fields = wrapper_fields(module_ast)
    classes = widget_classes(ui_tree)
    bindings = parameter_bindings(ui_tree)
    assert len(bindings) >= 15
    for widgetName, parameter in bindings.items():
        assert parameter in fields, f"{widgetName} binds to unknown parameter {parameter!r}"
        kind = field_kind(fields[parameter])
        assert classes[widgetName] in CONNECTORS.get(kind, set()), \
            f"{widgetName} ({classes[widgetName]}) cannot bind to {parameter}: {fields[parameter]}"
        # Qt really carries the dynamic property that connectGui looks for.
        widget = loaded.findChild(QtWidgets.QWidget, widgetName)
        assert widget.property("SlicerParameterName") == parameter
    # No parameter is bound twice (two widgets would fight over one value).
    assert len(set(bindings.values())) == len(bindings)


def test_node_selectors_offer_the_field_node_types(ui_tree, module_ast):
    fields = wrapper_fields(module_ast)
    for widget in ui_tree.iter("widget"):
        if widget.get("class") != "qMRMLNodeComboBox":
            continue
        binding = next((p.findtext("string") for p in widget.findall("property")
                        if p.get("name") == "SlicerParameterName"), None)
        types = [s.text for p in widget.findall("property") if p.get("name") == "nodeTypes" for s in p.iter("string")]
        assert types, f"{widget.get('name')} has no nodeTypes"
        if binding:
            assert all(t in fields[binding] for t in types), (widget.get("name"), types, fields[binding])


def test_parameter_fields_the_code_reads_exist(module_ast):
    """p.X / parameterNode.X / self._parameterNode.X in the module are all wrapper fields or its API."""
    fields = set(wrapper_fields(module_ast)) | WRAPPER_API
    used = set()
    for node in ast.walk(module_ast):
        if not isinstance(node, ast.Attribute):
            continue
        value = node.value
        if isinstance(value, ast.Name) and value.id in ("p", "parameterNode"):
            used.add(node.attr)
        elif isinstance(value, ast.Attribute) and value.attr == "_parameterNode":
            used.add(node.attr)
    assert used, "found no parameter node access at all"
    assert used <= fields, f"unknown parameter node attributes: {sorted(used - fields)}"


def test_custom_widgets_are_declared_and_scene_is_propagated(ui_tree):
    declared = {c.findtext("class") for c in ui_tree.iter("customwidget")}
    used = {w.get("class") for w in ui_tree.iter("widget")}
    assert {c for c in used if not c.startswith("Q")} <= declared
    receivers = {c.findtext("receiver") for c in ui_tree.iter("connection")
                 if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"}
    mrml_widgets = {w.get("name") for w in ui_tree.iter("widget")
                    if w.get("class", "").startswith("qMRML")} - {"UMedProtect"}
    assert mrml_widgets <= receivers, f"never given the scene: {sorted(mrml_widgets - receivers)}"


def test_choice_fields_match_the_combo_boxes_left_empty(ui_tree, module_ast):
    """Choice-bound combo boxes are filled by connectGui: items in the .ui would be duplicated."""
    for widget in ui_tree.iter("widget"):
        if widget.get("class") == "QComboBox" and any(p.get("name") == "SlicerParameterName"
                                                      for p in widget.findall("property")):
            assert not widget.findall("item"), widget.get("name")


def test_spin_box_ranges_and_values_are_the_engine_settings(ui_tree):
    """The .ui repeats what Qt needs before the parameter node binds: it must agree with the settings table."""
    from UMedProtectLib.settings import BUDGET_STEPS, DEFAULT_BUDGET_STEPS, OPTIONS, panel_bounds

    expected = {"epsilonSteps": (BUDGET_STEPS, DEFAULT_BUDGET_STEPS),
                "bandWidth": (panel_bounds("band_width"), OPTIONS["band_width"].default),
                "seed": (panel_bounds("seed"), OPTIONS["seed"].default)}
    bindings = parameter_bindings(ui_tree)
    for widget in ui_tree.iter("widget"):
        parameter = bindings.get(widget.get("name"))
        if parameter not in expected:
            continue
        numbers = {p.get("name"): int(p.findtext("number")) for p in widget.findall("property")
                   if p.findtext("number") is not None}
        (low, high), default = expected.pop(parameter)
        assert (numbers["minimum"], numbers["maximum"]) == (low, high), parameter
        assert numbers.get("value", 0) == default, parameter
    assert not expected, f"no spin box bound to {sorted(expected)}"


def test_the_ui_copies_no_preset_cost(ui_tree):
    """Preset costs live in the engine's settings; the panel sets the combo box's tooltip from them."""
    combo = next(w for w in ui_tree.iter("widget") if w.get("name") == "presetComboBox")
    tooltip = combo.find("./property[@name='toolTip']/string").text
    from UMedProtectLib.settings import PRESETS

    assert not any(str(p.iterations) in tooltip for p in PRESETS.values() if p.iterations)
