"""The budget grammar: fractions, native amounts (HU, units) and reading windows; resolved per study."""

from conftest import blob_study, sitk_image
import SimpleITK as sitk

from UMedProtectLib.cli import main


def _refused(argv, capsys, tmp_path) -> str:
    """Run protect with argv's budget options on a small study; assert exit 2 with one line; return the line."""
    image, label = blob_study()
    sitk.WriteImage(sitk_image(image), str(tmp_path / "i.nrrd"))
    sitk.WriteImage(sitk_image(label), str(tmp_path / "l.nrrd"))
    code = main(["protect", "--image", str(tmp_path / "i.nrrd"), "--label", str(tmp_path / "l.nrrd"),
                 "--output", str(tmp_path / "o.nrrd"), "--iterations", "0", "--progress", "none", *argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("umed-protect: error: "), (code, err)
    assert not (tmp_path / "o.nrrd").exists()
    return lines[0]


def test_huge_epsilon_is_a_range_error_not_an_overflow(capsys, tmp_path):
    assert "outside (0, 1]" in _refused(["--epsilon", "1e400"], capsys, tmp_path)


def test_negative_epsilon_as_separate_argument_gets_the_range_message(capsys, tmp_path):
    assert "outside (0, 1]" in _refused(["--epsilon", "-4/255"], capsys, tmp_path)
