"""CITATION.cff is YAML that names the UMed paper and agrees with the package's version, licence and repository."""

import re
import tomllib
from pathlib import Path

import yaml

import UMedProtectLib

ROOT = Path(__file__).resolve().parents[1]


def test_citation_names_the_paper_and_matches_the_package():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert citation["cff-version"] == "1.2.0" and citation["type"] == "software"
    assert citation["version"] == project["version"] == UMedProtectLib.__version__
    assert citation["license"] == project["license"]["text"]
    homepage = re.search(r'set\(EXTENSION_HOMEPAGE "([^"#]+)', (ROOT / "CMakeLists.txt").read_text()).group(1)
    assert citation["repository-code"] == homepage
    paper = citation["preferred-citation"]
    assert "Contour- and Texture-Aware Perturbations" in paper["title"]
    assert any("2403.14250" in identifier["value"] for identifier in paper["identifiers"])
    assert citation["authors"] and paper["authors"]
