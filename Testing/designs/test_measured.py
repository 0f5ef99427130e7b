"""The designs' evidence is data: every row of designs/measured/ loads in one row format, cites a docs page that
exists, and the rows an evaluation writes are the rows committed; the designs' files hold no measured figure."""

import json
import re
from pathlib import Path

import pytest

from UMedProtectLib.designs import DESIGNS
from UMedProtectLib.designs.measured import FOLDER, ROW_KEYS, study_rows
from UMedProtectLib.evaluation.evidence_rows import main as evidence_rows

ROOT = Path(__file__).resolve().parents[2]
STUDIES = sorted(FOLDER.glob("*.json"))


def test_there_is_evidence_for_every_design():
    assert STUDIES
    perturbing = {name: design for name, design in DESIGNS.items() if design.build is not None}
    assert len(perturbing) == len(DESIGNS) - 1  # only `none`, which claims no protection, has no rows
    assert all(design.measurements for design in perturbing.values()), [
        name for name, design in perturbing.items() if not design.measurements]


@pytest.mark.parametrize("path", STUDIES, ids=[path.stem for path in STUDIES])
def test_every_row_loads_with_where_when_and_how_it_was_measured(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["origin"].strip()  # written by evidence_rows, or transcribed: the file says which
    rows = study_rows(path)
    assert rows
    for design, row in rows:
        assert design in DESIGNS
        assert re.fullmatch(r"[0-9a-f]{40}", row.commit), row.commit
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row.date) and row.machine.strip()
        assert row.seeds >= 1 and f"x {row.seeds} seed" in row.victims
        assert 0 <= row.protected_dsc <= 1 and 0 <= row.clean_dsc <= 1
        # One file per study, named after its page: docs/results/faint-ladder.md -> faint-ladder*.json
        assert row.source.startswith("docs/results/") and path.stem.startswith(Path(row.source).stem), row.source


def test_every_source_of_every_designs_row_is_a_file_of_the_repository():
    missing = {m.source for design in DESIGNS.values() for m in design.measurements if not (ROOT / m.source).is_file()}
    assert not missing


@pytest.mark.parametrize("path", STUDIES, ids=[path.stem for path in STUDIES])
def test_every_data_file_is_named_on_its_page(path):
    """A reader of the page finds the data; a reader of the data finds the page with the command."""
    pages = {row.source for _, row in study_rows(path)}
    assert len(pages) == 1, pages
    assert path.name in (ROOT / pages.pop()).read_text(encoding="utf-8")


def test_a_row_outside_the_row_format_is_refused(tmp_path):
    design, row = study_rows(STUDIES[0])[0]
    good = {"design": design, **{key: getattr(row, key) for key in ROW_KEYS - {"design"}}}
    path = tmp_path / "study.json"
    path.write_text(json.dumps({"origin": "test", "rows": [good]}))
    assert study_rows(path)[0][1] == row
    for broken in ({**good, "dsc": 0.5}, {k: v for k, v in good.items() if k != "machine"}):
        path.write_text(json.dumps({"origin": "test", "rows": [broken]}))
        with pytest.raises(ValueError, match="row format"):
            study_rows(path)


def test_evidence_rows_writes_the_committed_rows_from_the_committed_evaluation(tmp_path):
    """The attacker-tools rows were written by evidence_rows from the evaluation.json kept beside its docs page."""
    committed = FOLDER / "attacker-tools-unet-synth-faint.json"
    first = study_rows(committed)[0][1]
    out = tmp_path / "rows.json"
    assert evidence_rows([str(ROOT / "docs/results/data/attacker-tools-unet-synth-faint.json"), first.source,
                          str(out), "--commit", first.commit, "--machine", first.machine, "--date", first.date]) == 0
    assert json.loads(out.read_text()) == json.loads(committed.read_text())
    assert study_rows(out) == study_rows(committed)


def test_the_designs_files_hold_no_measured_figure():
    """Figures live in designs/measured/; a design's file holds its construction and the parameters it is built with."""
    for path in (ROOT / "UMedProtectLib" / "designs").glob("*.py"):
        if path.name == "evidence.py":  # the criterion's thresholds (0.10, 0.70), not measurements
            continue
        code = re.sub(r"#.*", "", path.read_text())
        assert not re.findall(r"\b\d+\.\d{2,}\b", code), path.name
