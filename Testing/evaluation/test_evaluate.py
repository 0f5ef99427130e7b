"""Tests of the evaluation harness: corpora splits, metrics, baselines, victims, the command and the --quick run."""

import argparse
import json

import numpy as np
import pytest
import torch

from UMedProtectLib.evaluation.augmentation import augment
from UMedProtectLib.evaluation.baselines import ar_in_roi, checker_in_roi, em_pgd, gaussian_in_roi, lsp_in_roi
from UMedProtectLib.evaluation.command import add_arguments, config_from_args, run
from UMedProtectLib.evaluation.corpora.split import slab_split
from UMedProtectLib.evaluation.corpora.synthetic import synthetic_corpus
from UMedProtectLib.evaluation.metrics import dice, noise_std, perturbation_stats, psnr
from UMedProtectLib.evaluation.victims import VICTIMS, make_victim
from UMedProtectLib.method.masks import roi_and_band

from evaluation_testing import min_distance, split_gap, stardist_or_skip


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


# --- splits -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("num, slab, every, guard", [(100, 10, 4, 2), (37, 5, 3, 1), (150, 8, 2, 3), (60, 10, 4, 0)])
def test_slab_split_shares_no_slab_and_keeps_the_guard(num, slab, every, guard):
    train, test = slab_split(num, slab, every, guard)
    train_set = {i for s in train for i in s}
    test_set = {i for s in test for i in s}
    assert train and test and not train_set & test_set
    assert min_distance(train, test) >= 2 * guard + 1
    for part in train + test:  # each study is one contiguous run of slices
        assert part == list(range(part[0], part[-1] + 1))


def test_mni_corpus_split_by_slab_with_no_neighbouring_slices():
    from UMedProtectLib.evaluation.corpora.mni import mni_corpus

    corpus = mni_corpus("wm")
    assert split_gap(corpus) >= 5  # 2-slice guards on both sides
    images, labels = corpus.slices("train")
    assert images.shape[0] >= 60 and images.min() >= 0 and images.max() <= 1
    assert set(np.unique(labels)) == {0, 1}
    assert labels.reshape(len(labels), -1).sum(axis=1).min() >= 30


def test_nuclei_corpus_tiles_never_touch_across_the_split():
    from UMedProtectLib.evaluation.corpora.nuclei import nuclei_corpus

    corpus = stardist_or_skip(nuclei_corpus)
    assert split_gap(corpus) >= 8
    assert corpus.summary()["train_slices"] >= 32 and corpus.summary()["test_slices"] >= 16


def test_synthetic_corpus_splits_by_patient_and_is_reproducible():
    first = synthetic_corpus("lesion", train_studies=3, test_studies=2, slices=4, size=64)
    again = synthetic_corpus("lesion", train_studies=3, test_studies=2, slices=4, size=64)
    assert not {s.name for s in first.train} & {s.name for s in first.test}
    assert split_gap(first) >= 1
    np.testing.assert_array_equal(first.train[0].image, again.train[0].image)
    organ = synthetic_corpus("organ", train_studies=3, test_studies=2, slices=4, size=64)
    # Lesions lie inside the organ, so the lesion task's foreground is a strict subset of the organ task's.
    assert (first.train[0].label <= organ.train[0].label).all()
    assert organ.train[0].label.sum() > first.train[0].label.sum()


# --- metrics ------------------------------------------------------------------------------------------------

def test_dice_values():
    a = np.zeros((4, 10, 10), np.uint8)
    b = np.zeros_like(a)
    assert dice(a, b) == 1.0
    a[0, :5] = 1
    assert dice(a, a) == 1.0
    assert dice(a, b) == 0.0
    b[0, :5, :5] = 1  # 25 of a's 50 voxels
    assert dice(a, b) == pytest.approx(2 * 25 / 75)


def test_psnr_and_noise_estimate():
    rng = np.random.default_rng(0)
    clean = np.full((3, 64, 64), 0.5)
    noisy = clean + rng.normal(0, 0.02, clean.shape)
    assert noise_std(noisy) == pytest.approx(0.02, rel=0.1)
    assert psnr(clean, clean + 0.01) == pytest.approx(40.0)


# --- baselines ----------------------------------------------------------------------------------------------

def _toy(seed: int = 0):
    rng = np.random.default_rng(seed)
    images = np.clip(0.3 + 0.05 * rng.standard_normal((6, 32, 32)), 0, 1).astype(np.float32)
    labels = np.zeros((6, 32, 32), np.int64)
    labels[:, 10:20, 12:22] = 1
    images[labels == 1] += 0.2
    return images, labels


def _check_bound_and_region(images, labels, protected, epsilon, band_width):
    difference = protected.astype(np.float64) - images
    assert np.abs(difference).max() <= epsilon + 1e-6
    assert np.abs(difference).max() > epsilon / 2  # it did perturb
    outside = ~roi_and_band(labels > 0, band_width)
    assert (difference[outside] == 0).all()
    assert protected.min() >= 0 and protected.max() <= 1


def test_gaussian_baseline_respects_bound_and_region():
    images, labels = _toy()
    protected, _ = gaussian_in_roi(images, labels, 8 / 255, 3, seed=1)
    _check_bound_and_region(images, labels, protected, 8 / 255, 3)


def test_checker_baseline_is_a_fixed_pattern_inside_the_region():
    images, labels = _toy()
    protected, info = checker_in_roi(images, labels, 8 / 255)
    _check_bound_and_region(images, labels, protected, 8 / 255, 0)
    inside = (labels > 0) & (images > 8 / 255) & (images < 1 - 8 / 255)
    change = (protected - images)[inside]
    assert np.allclose(np.abs(change), 8 / 255, atol=1e-6) and info["period"] == 8


def test_lsp_is_one_patch_pattern_per_class_inside_the_region():
    images, labels = _toy()
    images[:] = 0.5  # no clipping: the change is the pattern itself
    protected, info = lsp_in_roi(images, labels, 8 / 255, 3, seed=0)
    _check_bound_and_region(images, labels, protected, 8 / 255, 3)
    change = protected.astype(np.float64) - images
    assert np.abs(change).max() == pytest.approx(8 / 255, abs=1e-6)  # scaled to the budget
    inside, band = labels > 0, roi_and_band(labels > 0, 3) & (labels == 0)
    # The same pattern on every slice, constant on each patch, and a different pattern for each class.
    for mask in (inside, band):
        np.testing.assert_allclose(change[0][mask[0]], change[3][mask[3]], atol=1e-6)
    square = change[0, 10:16, 16:22]  # ROI pixels of the patch at rows 8-15, columns 16-23
    assert np.allclose(square, square[0, 0], atol=1e-6) and info["patch"] == 8
    assert abs(change[0, 8, 16] - change[0, 12, 16]) > 1e-4  # the band rows of that patch: class 0's level


def test_ar_noise_follows_each_class_process_and_respects_bound_and_region():
    from UMedProtectLib.evaluation.baselines import ar_coefficients, ar_field

    rng = np.random.default_rng(0)
    window = ar_coefficients(rng)
    assert window[2, 2] == 0 and np.abs(window).sum() == pytest.approx(0.95)
    field = ar_field(window, 2, 48, 48, rng)
    # Least squares on the field recovers the process's 8 causal coefficients.
    rows = [field[0, i - 2:i + 1, j - 2:j + 1].ravel()[:8] for i in range(2, 48) for j in range(2, 48)]
    targets = [field[0, i, j] for i in range(2, 48) for j in range(2, 48)]
    fitted = np.linalg.lstsq(np.array(rows), np.array(targets), rcond=None)[0]
    np.testing.assert_allclose(fitted, window.ravel()[:8], atol=0.06)
    images, labels = _toy()
    images[:] = 0.5
    protected, info = ar_in_roi(images, labels, 8 / 255, 3, seed=1)
    _check_bound_and_region(images, labels, protected, 8 / 255, 3)
    assert len(info["windows"]) == 2 and info["windows"][0] != info["windows"][1]
    change = protected.astype(np.float64) - images
    assert not np.allclose(change[0], change[1])  # a fresh field per slice


def test_em_pgd_baseline_respects_bound_and_region_and_lowers_the_surrogate_loss():
    torch.manual_seed(0)
    images, labels = _toy()
    protected, log = em_pgd(images, labels, 8 / 255, 2, seed=0, device=torch.device("cpu"), rounds=2,
                            surrogate_steps=3, pgd_steps=3, batch_size=4)
    _check_bound_and_region(images, labels, protected, 8 / 255, 2)
    last = log["surrogate_history"][-1]
    assert last["loss_protected"] < last["loss_clean"]  # error-minimising: the noise makes the task easier


def test_perturbation_stats_relative_to_noise():
    images, labels = _toy()
    protected, _ = gaussian_in_roi(images, labels, 4 / 255, 3, seed=2)
    stats = perturbation_stats(images, protected, labels)
    assert stats["linf"] <= 4 / 255 + 1e-6
    assert stats["linf_over_noise"] == pytest.approx(stats["linf"] / stats["noise_std"])
    assert 0 < stats["changed_fraction"] < 1 and stats["ssim"] < 1


# --- victims and augmentation -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(VICTIMS))
def test_victims_segment_any_slice_size(name):
    torch.manual_seed(0)
    model = make_victim(name).eval()
    assert model(torch.rand(2, 1, 50, 38)).shape == (2, 2, 50, 38)


def test_victim_families_differ_from_the_surrogate():
    sizes = {name: sum(p.numel() for p in make_victim(name).parameters()) for name in VICTIMS}
    assert len(set(sizes.values())) == len(sizes)


def test_augmentation_keeps_image_and_label_aligned():
    labels = torch.zeros(4, 40, 40, dtype=torch.long)
    labels[:, 8:20, 5:30] = 1
    images = labels[:, None].float() * 0.8 + 0.1
    for level in ("flip", "full"):
        out, out_labels = augment(images, labels, level, torch.Generator().manual_seed(3))
        # The intensity jitter moves 0.1 / 0.9 by at most ~0.15, so 0.5 still separates object from background.
        agreement = ((out[:, 0] > 0.5).long() == out_labels).float().mean()
        assert agreement > 0.97
        again, _ = augment(images, labels, level, torch.Generator().manual_seed(3))
        assert torch.equal(out, again)


def test_augmentation_levels_do_what_they_name():
    torch.manual_seed(0)
    images = torch.rand(64, 1, 16, 16)
    labels = (images[:, 0] > 0.5).long()
    none, none_labels = augment(images, labels, "none", torch.Generator().manual_seed(0))
    assert torch.equal(none, images) and torch.equal(none_labels, labels)
    flipped, flipped_labels = augment(images, labels, "flip", torch.Generator().manual_seed(0))
    # Every output slice is one of the four mirror images of its input, values untouched, and all four occur.
    kinds = []
    for index in range(len(images)):
        candidates = [images[index], images[index].flip(-1), images[index].flip(-2), images[index].flip(-1, -2)]
        kinds.append([k for k, c in enumerate(candidates) if torch.equal(flipped[index], c)][0])
    assert set(kinds) == {0, 1, 2, 3}
    assert torch.equal(flipped_labels, (flipped[:, 0] > 0.5).long())
    full, _ = augment(images, labels, "full", torch.Generator().manual_seed(0))
    assert full.min() >= 0 and full.max() <= 1
    # Resampling and intensity jitter change the values themselves, not only their positions.
    assert not torch.equal(torch.sort(full.flatten())[0], torch.sort(images.flatten())[0])
    with pytest.raises(ValueError, match="unknown augmentation level"):
        augment(images, labels, "rotate", torch.Generator())


def test_evaluation_does_not_import_the_engines_augmentation():
    import ast
    from pathlib import Path

    import UMedProtectLib.evaluation as evaluation

    for source in Path(evaluation.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").endswith("method.fitting.augment"), source.name


# --- command --------------------------------------------------------------------------------------------------

def test_config_from_args_applies_options():
    config = config_from_args(_args("--quick", "--victims", "unet,fpn", "--epsilon", "8/255", "--sweep", "2/255,4/255",
                                    "--seeds", "2", "--steps", "30"))
    assert config.victims == ("unet", "fpn") and config.seeds == (0, 1)
    assert config.epsilon == pytest.approx(8 / 255) and config.recipe.steps == 30
    assert config.sweep == pytest.approx((2 / 255, 4 / 255))


def test_output_folder_is_output_dir_as_in_the_other_commands_with_the_old_spellings_kept():
    for spelling in ("--output-dir", "--output", "-o"):
        assert _args(spelling, "results").output_dir == "results"
    assert _args().output_dir == "umed-evaluation"
    with pytest.raises(SystemExit):  # --yes was accepted and ignored; it is gone
        _args("--yes")


def test_bad_options_exit_with_code_2(tmp_path, capsys):
    assert run(_args("--victims", "resnet", "-o", str(tmp_path))) == 2
    assert "unknown victim" in capsys.readouterr().err
    assert run(_args("--epsilon", "0", "-o", str(tmp_path))) == 2


# --- the --quick run (CI) -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One `umed-protect evaluate --quick` run shared by the tests below (nuclei and synth-faint, U-Net, no
    augmentation; it added about 4 min to the CI run, whose quick run took about 3 min before)."""
    pytest.importorskip("UMedProtectLib.method.protection")
    from UMedProtectLib.evaluation.corpora.nuclei import stardist_data_folder

    stardist_or_skip(stardist_data_folder)  # the quick run's real corpus is the nuclei image
    output = tmp_path_factory.mktemp("quick")
    assert run(_args("--quick", "-o", str(output), "--progress", "none")) == 0
    return output, json.loads((output / "evaluation.json").read_text())


@pytest.mark.slow
def test_quick_run_writes_table_figure_and_json(quick_run):
    output, data = quick_run
    assert (output / "evaluation.png").stat().st_size > 10_000
    markdown = (output / "evaluation.md").read_text()
    for row in ("clean (no protection)", "Gaussian noise in ROI", "EM-PGD", "UMed, fitted on training set"):
        assert row in markdown
    assert all(f"**Verdict, {corpus}**" in markdown[markdown.index("## Verdict"):] for corpus in data["corpora"])
    nuclei = data["corpora"]["nuclei"]["augmentation"]["none"]
    # The victim converged on clean data: without that, no drop would mean anything.
    assert nuclei["clean_best_dice"] >= 0.85
    curve = nuclei["clean"]["unet"]["runs"][0]["curve"]
    assert curve[-1]["test_dice"] > curve[0]["test_dice"]
    for entry in nuclei["methods"]:
        assert entry["stats"]["linf"] <= entry["epsilon"] + 1e-6
        assert 20 < entry["stats"]["psnr_db"] < 80
        for run_ in entry["victims"]["unet"]["runs"]:
            assert run_["clean_twin_dice"] == nuclei["clean"]["unet"]["runs"][0]["dice"]
    umed = next(e for e in nuclei["methods"] if e["method"] == "umed-dataset")
    assert umed["generation_log"]["surrogate_logs"], "the engine's surrogate losses must be logged"


@pytest.mark.slow
def test_quick_run_default_design_lowers_the_victim_on_faint_lesions(quick_run):
    """The direction, asserted where the engine takes effect (docs/results/frontier.md): faint lesions, a victim
    without augmentation. Measured with `umed-protect evaluate --quick --corpora synth-faint --threads 1`: clean
    0.764, the default design fitted on the training set 0.416 (45.8 dB), Gaussian noise at the same budget 0.700.
    On nuclei (the same run) nothing protects: see docs/results/nuclei-ladder.md."""
    _, data = quick_run
    faint = data["corpora"]["synth-faint"]["augmentation"]["none"]
    best = {entry["method"]: entry["best_dice"] for entry in faint["methods"]}
    assert faint["clean_best_dice"] >= 0.70, faint["clean_best_dice"]  # the clean twin learns: the drop means something
    assert best["umed-dataset"] <= faint["clean_best_dice"] - 0.25, best
    # Noise of the same budget is not what lowers the victim: the fitted perturbation is.
    assert best["gaussian"] >= faint["clean_best_dice"] - 0.15, best


def test_method_names_select_mode_and_design():
    from UMedProtectLib.evaluation.umed import mode_and_design

    assert mode_and_design("umed-dataset") == ("umed-dataset", None)
    assert mode_and_design("umed-carrier-per-study") == ("umed-per-study", "carrier")
    assert mode_and_design("umed-published-transfer") == ("umed-transfer", "published")
    assert mode_and_design("umed-quiet-rim-dataset") == ("umed-dataset", "quiet-rim")


@pytest.mark.parametrize("mode", ["umed-per-study", "umed-dataset", "umed-transfer"])
def test_umed_modes_protect_every_training_study_within_the_budget(mode):
    pytest.importorskip("UMedProtectLib.method.protection")
    from UMedProtectLib.evaluation.umed import protect_studies
    from UMedProtectLib.settings import ProtectSettings

    corpus = synthetic_corpus("organ", train_studies=4, test_studies=1, slices=3, size=48)
    # iterations=0: the untrained generators, enough to check how the modes are wired, in seconds.
    settings = ProtectSettings(epsilon=8 / 255, iterations=0, device="cpu")
    protected, info = protect_studies(mode, corpus.train, settings, transfer_fraction=0.5)
    assert len(protected) == len(corpus.train)
    expected_fit = {"umed-per-study": 0, "umed-dataset": 4, "umed-transfer": 2}[mode]
    assert len(info["fitted_on"]) == expected_fit
    assert len(info["engine_reports"]) == 4
    for study, image in zip(corpus.train, protected):
        difference = image.astype(np.float64) - study.image
        assert image.shape == study.image.shape
        assert np.abs(difference).max() <= 8 / 255 + 1e-5
        outside = ~roi_and_band(study.label > 0, settings.band_width)
        assert (difference[outside] == 0).all()


def test_the_report_ends_with_a_verdict_per_corpus_by_the_criterion():
    from UMedProtectLib.evaluation.table import markdown_report, verdict

    def entry(method, dsc):
        return {"method": method, "epsilon": 4 / 255, "epsilon_255": 4.0, "mean_dice": dsc, "best_dice": dsc,
                "victims": {"unet": {"mean": dsc, "best": dsc}}, "groups": {},
                "stats": {"psnr_db": 45.0, "ssim": 0.99, "linf_over_noise": 1.0, "rms_over_noise": 0.5,
                          "linf_over_contrast": 0.4, "roi_visible_fraction": 0.9}}

    def level(clean, *methods):
        return {"clean": {"unet": {"mean": clean, "best": clean}}, "clean_mean_dice": clean, "clean_best_dice": clean,
                "clean_groups": {}, "methods": list(methods)}

    protected = {"none": level(0.85, entry("gaussian", 0.80), entry("umed-quiet-rim-dataset", 0.05)),
                 "full": level(0.82, entry("umed-quiet-rim-dataset", 0.30))}
    text = verdict("synth-faint", protected, 4 / 255, ["unet"])
    assert text.startswith("**Verdict, synth-faint** (epsilon 4/255; protected means a victim's best seed at most DSC "
                           "0.10 while its clean twin reaches 0.70): ")
    assert "at augmentation none PROTECTED by UMed quiet-rim design, fitted on training set against unet (best seed " \
           "0.050, PSNR 45.0 dB)" in text
    assert "at augmentation full NOT PROTECTED: the lowest best-seed DSC was 0.300" in text
    unlearnt = verdict("nuclei", {"none": level(0.5, entry("gaussian", 0.05))}, 4 / 255, ["unet"])
    assert "no clean victim reached DSC 0.70, so nothing can be concluded" in unlearnt
    results = {"config": {"epsilon": 4 / 255, "victims": ["unet"], "recipe": {"steps": 150}, "seeds": [0]},
               "environment": {"device": "cpu"}, "seconds": 60.0,
               "corpora": {name: {"summary": {"train_slices": 4, "test_slices": 2}, "augmentation": levels}
                           for name, levels in (("synth-faint", protected), ("nuclei", {"none": level(0.9)}))}}
    markdown = markdown_report(results).rstrip()
    tail = markdown[markdown.index("## Verdict"):].split("\n\n")
    assert [part.split(",")[1].split("**")[0].strip() for part in tail[1:]] == ["synth-faint", "nuclei"]
    assert markdown.endswith("NOT PROTECTED: no method ran at this epsilon.")
    assert "victims trained 150 steps, seeds 0;" in markdown


def test_the_report_says_how_long_nnunet_trained_beside_the_steps_of_the_other_victims():
    from UMedProtectLib.evaluation.table import training_phrase

    config = {"victims": ["nnunet-2d"], "recipe": {"steps": 400}, "nnunet": {"epochs": 2, "iterations": 250}}
    assert training_phrase(config) == "nnU-Net trained 2 epochs of 250 batches"
    both = training_phrase({**config, "victims": ["unet", "nnunet-3d"]})
    assert both == "victims trained 400 steps, nnU-Net trained 2 epochs of 250 batches"


def test_a_ladder_row_is_the_protected_row_of_an_evaluate_run():
    """harness.ladder_row (research/ladder_row.py's API) trains what evaluate trains for one method and level, no
    clean twin: the same victim on the same protected split gets the same test DSC."""
    from UMedProtectLib.evaluation.config import quick_config
    from UMedProtectLib.evaluation.harness import evaluate, ladder_row
    from UMedProtectLib.evaluation.victim_training import Recipe

    config = quick_config().with_changes(corpora=("synth-lesion",), methods=("checker",), sweep=(), device="cpu",
                                         threads=1, recipe=Recipe(steps=4, batch_size=4, curve_points=2))
    row = ladder_row(config)
    assert (row["corpus"], row["method"], row["augmentation"]) == ("synth-lesion", "checker", "none")
    full = evaluate(config)["corpora"]["synth-lesion"]["augmentation"]["none"]["methods"][0]
    assert [r["dice"] for r in row["victims"]["unet"]["runs"]] == [r["dice"] for r in full["victims"]["unet"]["runs"]]
    assert row["stats"]["psnr_db"] == full["stats"]["psnr_db"]
    assert "clean_twin_dice" not in row["victims"]["unet"]["runs"][0]
