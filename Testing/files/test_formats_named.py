"""The image file types are listed once (files/formats.py); the command's help and docs/cli.md name that list."""

from pathlib import Path

from UMedProtectLib.cli.main import build_parser
from UMedProtectLib.files.formats import IMAGE_EXTENSIONS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_protect_help_names_every_supported_file_type():
    parser = build_parser()
    protect = parser._subparsers._group_actions[0].choices["protect"]
    assert f"Files: {' '.join(IMAGE_EXTENSIONS)};" in protect.description


def test_docs_cli_names_the_supported_file_types_as_formats_py_lists_them():
    text = DOCS.read_text(encoding="utf-8")
    listed = f"`{' '.join(IMAGE_EXTENSIONS)}`"
    assert f"images {listed}" in text and f"a label map ({listed})" in text
