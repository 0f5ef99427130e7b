"""The threat model as an axis of `umed-protect evaluate`: every augmentation level with its own clean twins, on a
synthetic corpus with per-contrast groups and on the owner's own dataset, through the real command."""

import argparse
import json

import numpy as np
import pytest
import SimpleITK as sitk

from UMedProtectLib.evaluation.command import add_arguments, config_from_args, run
from UMedProtectLib.evaluation.corpora.contrast import GROUPS

from evaluation_testing import curve_points


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_augmentation_and_dataset_options():
    config = config_from_args(_args("--augmentation", "none,full", "--dataset", "cases.csv"))
    assert config.augmentations == ("none", "full") and config.dataset == "cases.csv" and config.corpora == ()
    assert config_from_args(_args()).augmentations == ("none", "flip", "full")
    assert config_from_args(_args("--dataset", "d", "--corpora", "nuclei")).corpora == ("nuclei",)
    assert run(_args("--augmentation", "rotate", "-o", "unused")) == 2


@pytest.fixture(scope="module")
def axis_run(tmp_path_factory):
    """A tiny real run: synth-contrast (quick size) and a 4-study dataset on disk, levels none and flip, LSP."""
    data = tmp_path_factory.mktemp("owner")
    rng = np.random.default_rng(0)
    for index in range(4):
        image = rng.normal(100, 5, (3, 32, 32)).astype(np.float32)
        label = np.zeros((3, 32, 32), np.uint8)
        label[:, 10:20, 8 + index:18 + index] = 1
        image[label == 1] += 40
        sitk.WriteImage(sitk.GetImageFromArray(image), str(data / f"case{index}.nrrd"))
        sitk.WriteImage(sitk.GetImageFromArray(label), str(data / f"case{index}_label.nrrd"))
    output = tmp_path_factory.mktemp("axis")
    code = run(_args("--quick", "--corpora", "synth-contrast", "--dataset", str(data), "--augmentation", "none,flip",
                     "--methods", "lsp", "--epsilon", "4/255", "--steps", "3", "--output-dir", str(output),
                     "--progress", "none", "--threads", "1"))
    assert code == 0
    # Strict JSON, the engine's report rule: a non-finite number would be null, never NaN or Infinity.
    strict = json.loads((output / "evaluation.json").read_text(),
                        parse_constant=lambda name: pytest.fail(f"evaluation.json holds {name}"))
    return output, strict, data.name


def test_every_level_has_its_own_clean_twins_and_entries(axis_run):
    output, data, dataset_name = axis_run
    assert data["config"]["augmentations"] == ["none", "flip"]
    assert set(data["corpora"]) == {"synth-contrast", f"dataset-{dataset_name}"}
    markdown = (output / "evaluation.md").read_text()
    for corpus, by_level in data["corpora"].items():
        assert list(by_level["augmentation"]) == ["none", "flip"]
        for level, result in by_level["augmentation"].items():
            assert result["augmentation"] == level
            assert f"**{corpus}, augmentation {level}**" in markdown
            (entry,) = result["methods"]
            assert entry["method"] == "lsp" and entry["augmentation"] == level
            twins = [r["dice"] for r in result["clean"]["unet"]["runs"]]
            assert [r["clean_twin_dice"] for r in entry["victims"]["unet"]["runs"]] == twins
    # One protected split per method, shared by the levels.
    none, flip = (data["corpora"]["synth-contrast"]["augmentation"][level]["methods"][0] for level in ("none", "flip"))
    assert none["stats"] == flip["stats"]
    assert (output / "evaluation.png").stat().st_size > 10_000
    # Written as one transaction: the three files and no staging folder left behind.
    assert sorted(p.name for p in output.iterdir()) == ["evaluation.json", "evaluation.md", "evaluation.png"]


def test_contrast_groups_are_scored_and_tabulated(axis_run):
    output, data, _ = axis_run
    result = data["corpora"]["synth-contrast"]["augmentation"]["none"]
    assert list(result["clean_groups"]) == list(GROUPS)
    run_ = result["clean"]["unet"]["runs"][0]
    assert set(run_["groups"]) == set(GROUPS) and all(0 <= v <= 1 for v in run_["groups"].values())
    assert set(result["methods"][0]["groups"]) == set(GROUPS)
    markdown = (output / "evaluation.md").read_text()
    assert "**synth-contrast, augmentation none**: DSC per test group" in markdown and "| 8x large DSC |" in markdown
    points = curve_points(data, method="lsp", corpus="synth-contrast", augmentation="flip")
    assert len(points) == 1 and points[0]["augmentation"] == "flip"
