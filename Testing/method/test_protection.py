"""The engine's promises: only ROI + band change, the budget holds after rounding, runs are reproducible."""

import threading

import numpy as np
import pytest
import torch

from UMedProtectLib import Cancelled, InputError, ProtectSettings, fit_profile, load_profile, protect, save_profile

from conftest import perturbable_region

FAST = ProtectSettings(iterations=4, batch_size=4, patch_size=32)


def lesion_study(dtype=np.int16, shape=(6, 64, 80), offset=300.0, contrast=60.0, seed=0, labels=(1,)):
    """A noisy volume with one ellipsoidal lesion per label value, side by side."""
    rng = np.random.default_rng(seed)
    image = rng.normal(offset, 20.0, shape)
    label = np.zeros(shape, np.uint8)
    z, y, x = np.mgrid[:shape[0], :shape[1], :shape[2]]
    for index, value in enumerate(labels):
        centre_x = shape[2] * (index + 1) / (len(labels) + 1)
        lesion = ((z - shape[0] / 2) / 2.5) ** 2 + ((y - shape[1] / 2) / 12) ** 2 + ((x - centre_x) / 9) ** 2 < 1
        label[lesion] = value
        image[lesion] += contrast * (index + 1)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        image = np.clip(np.round(image), info.min, info.max)
    return image.astype(dtype), label


@pytest.mark.parametrize("dtype, offset, contrast", [
    (np.uint8, 100.0, 50.0), (np.int16, -200.0, 80.0), (np.uint16, 900.0, 300.0), (np.float32, 0.3, 0.2),
])
def test_only_roi_and_band_change_and_budget_holds_after_rounding(dtype, offset, contrast):
    image, label = lesion_study(dtype, offset=offset, contrast=contrast)
    settings = FAST.with_changes(epsilon=8 / 255, band_width=2)
    result = protect(image, label, settings=settings)
    region = perturbable_region(label, [1], 2)
    assert result.protected.dtype == image.dtype and result.protected.shape == image.shape
    assert np.array_equal(result.protected[~region], image[~region])  # bit-identical outside
    assert np.count_nonzero(result.protected[region] != image[region]) > 0.2 * region.sum()
    change = np.abs(result.protected.astype(np.float64) - image.astype(np.float64))
    budget = result.report["epsilon_native"]
    assert change.max() <= budget * (1 + 1e-6)
    assert result.report["linf_native"] == pytest.approx(change.max())
    assert np.allclose(result.difference, result.protected.astype(np.float64) - image.astype(np.float64))
    assert image.min() <= result.protected.min() and result.protected.max() <= image.max()


def test_report_has_every_figure():
    image, label = lesion_study()
    report = protect(image, label, spacing=(0.8, 0.8, 2.0), settings=FAST).report
    for key in ["psnr_db", "psnr_roi_db", "ssim", "ssim_roi_slices", "linf", "linf_native", "changed_fraction",
                "epsilon", "epsilon_native", "runtime_s", "device", "seed", "settings", "training", "budget"]:
        assert key in report, key
    assert report["psnr_roi_db"] < report["psnr_db"]
    assert 0.99 < report["ssim"] <= 1.0
    assert report["device"] == "cpu" and report["roi_slices"] == int(np.any(label, axis=(1, 2)).sum())
    assert report["training"]["iterations_run"] == 4
    assert report["threat_model"]["design"] == "published" and report["threat_model"]["summary"]


def test_same_seed_gives_bit_identical_output_and_another_seed_does_not():
    image, label = lesion_study()
    first = protect(image, label, settings=FAST).protected
    assert np.array_equal(first, protect(image, label, settings=FAST).protected)
    assert not np.array_equal(first, protect(image, label, settings=FAST.with_changes(seed=1)).protected)


def test_multi_label_roi_is_the_union_of_the_chosen_labels():
    image, label = lesion_study(labels=(1, 2))
    both = protect(image, label, settings=FAST)
    only_two = protect(image, label, settings=FAST.with_changes(labels=(2,)))
    assert both.report["labels"] == [1, 2]
    assert np.array_equal(only_two.protected[~perturbable_region(label, [2], 3)],
                          image[~perturbable_region(label, [2], 3)])
    assert np.count_nonzero(both.difference) > np.count_nonzero(only_two.difference)


def test_two_dimensional_images_are_one_slice_studies():
    image, label = lesion_study(shape=(1, 48, 48))
    result = protect(image[0], label[0], settings=FAST)
    assert result.protected.shape == (48, 48) and np.count_nonzero(result.difference) > 0


def test_windows_follow_the_roi_not_the_volume():
    from UMedProtectLib.method.intensity import IntensityScale
    from UMedProtectLib.method.windows import build_windows

    image, label = lesion_study(shape=(10, 256, 256))
    windows = build_windows(image, label, (1,), IntensityScale.from_image(image, (0.5, 99.5)), 3, 8)
    assert [w.z for w in windows] == [z for z in range(10) if label[z].any()]
    assert all(w.image.shape[0] <= 48 and w.image.shape[1] <= 48 for w in windows)


def test_profile_round_trip_applies_the_same_perturbation(tmp_path):
    image, label = lesion_study()
    fitted = protect(image, label, settings=FAST)
    path = tmp_path / "study.umedprofile"
    save_profile(fitted.profile, path)
    loaded = load_profile(path)
    applied = protect(image, label, settings=FAST, profile=loaded)
    assert np.array_equal(applied.protected, fitted.protected)
    assert applied.report["mode"] == "profile" and fitted.report["mode"] == "fit-study"
    other_image, other_label = lesion_study(seed=5, offset=500.0)
    assert np.count_nonzero(protect(other_image, other_label, settings=FAST, profile=loaded).difference) > 0


def test_carrier_profile_brings_its_design_and_stays_in_roi_and_band(tmp_path):
    image, label = lesion_study()
    carrier = FAST.with_changes(design="carrier", epsilon=8 / 255)
    fitted = protect(image, label, settings=carrier)
    path = tmp_path / "carrier.umedprofile"
    save_profile(fitted.profile, path)
    applied = protect(image, label, settings=FAST.with_changes(epsilon=8 / 255), profile=load_profile(path))
    assert applied.report["settings"]["design"] == "carrier"
    assert np.array_equal(applied.protected, fitted.protected)
    region = perturbable_region(label, [1], 3)
    assert np.array_equal(fitted.protected[~region], image[~region])
    assert np.abs(fitted.difference).max() <= fitted.report["epsilon_native"] * (1 + 1e-6)
    assert fitted.report["training"]["iterations_run"] == 4


def test_profile_fitted_on_a_dataset_protects_unseen_studies(tmp_path):
    studies = [lesion_study(seed=seed) for seed in range(3)]
    profile = fit_profile(studies, FAST)
    assert profile.info["studies"] == 3 and profile.info["slices"] == sum(
        int(np.any(label, axis=(1, 2)).sum()) for _, label in studies)
    image, label = lesion_study(seed=9)
    result = protect(image, label, settings=FAST, profile=profile)
    assert np.array_equal(result.protected[~perturbable_region(label, [1], 3)],
                          image[~perturbable_region(label, [1], 3)])


def test_a_file_that_is_not_a_profile_is_refused(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a profile")
    with pytest.raises(InputError, match="not a readable UMedProtect profile"):
        load_profile(garbage)
    pickled_object = tmp_path / "object.pt"
    torch.save({"format": "umed-protect-profile/1", "state": ProtectSettings()}, pickled_object)
    with pytest.raises(InputError, match="not a readable UMedProtect profile"):
        load_profile(pickled_object)
    with pytest.raises(InputError, match="does not exist"):
        load_profile(tmp_path / "missing.pt")


def test_progress_is_monotonic_and_cancel_stops_the_run():
    image, label = lesion_study()
    events = []
    protect(image, label, settings=FAST, progress=events.append)
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"prepare", "fit", "apply", "done"} <= {e.stage for e in events}
    flag = threading.Event()
    flag.set()
    with pytest.raises(Cancelled):
        protect(image, label, settings=FAST, cancel=flag.is_set)


@pytest.mark.parametrize("mutate, message", [
    (lambda image, label: (image, np.zeros_like(label)), "label map is empty"),
    (lambda image, label: (np.full_like(image, 7), label), "constant"),
    (lambda image, label: (np.where(label > 0, np.nan, image.astype(np.float32)), label), "NaN"),
    (lambda image, label: (np.stack([image, image], -1), label), "dimensions"),
    (lambda image, label: (image, label[:-1]), "shape"),
    (lambda image, label: (image, label * 0.5), "non-integer"),
])
def test_bad_inputs_are_refused_with_a_clear_message(mutate, message):
    image, label = lesion_study()
    bad_image, bad_label = mutate(image, label)
    with pytest.raises(InputError, match=message):
        protect(bad_image, bad_label, settings=FAST)


def test_bad_settings_are_refused():
    image, label = lesion_study()
    with pytest.raises(InputError, match="not in the label map"):
        protect(image, label, settings=FAST.with_changes(labels=(3,)))
    for epsilon in (0.0, -0.1, 1.5):
        with pytest.raises(InputError, match="outside"):
            ProtectSettings(epsilon=epsilon)
    with pytest.raises(InputError, match="design 'paper' is unknown"):
        ProtectSettings(design="paper")
    with pytest.raises(InputError, match="CUDA"):
        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present")
        protect(image, label, settings=FAST.with_changes(device="cuda"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_run_respects_the_same_bounds():
    image, label = lesion_study()
    result = protect(image, label, settings=FAST.with_changes(device="cuda", iterations=20))
    assert result.report["device"].startswith("cuda")
    region = perturbable_region(label, [1], 3)
    assert np.array_equal(result.protected[~region], image[~region])
    assert np.abs(result.difference).max() <= result.report["epsilon_native"] * (1 + 1e-6)


@pytest.mark.slow
def test_protection_is_error_minimising_on_a_real_study():
    """A fresh surrogate trained on the protected slices reaches a lower training loss than on the clean ones."""
    from UMedProtectLib.files.sample import template_study
    from UMedProtectLib.method.intensity import IntensityScale
    from UMedProtectLib.method.fitting.losses import dice_ce_loss
    from UMedProtectLib.method.fitting.training import PatchSampler, make_surrogate
    from UMedProtectLib.method.windows import build_windows

    study = template_study(70, 86, "white_matter")
    settings = ProtectSettings(epsilon=16 / 255, iterations=150)
    protected = protect(study.image, study.label, settings=settings).protected
    scale = IntensityScale.from_image(study.image, settings.percentiles)

    def late_training_loss(volume):
        windows = build_windows(volume, study.label, (1,), scale, settings.band_width, settings.margin)
        torch.manual_seed(1)
        network = make_surrogate(2, settings)
        optimiser = torch.optim.Adam(network.parameters(), 1e-3)
        sampler = PatchSampler(windows, 64, torch.device("cpu"), seed=1)
        losses = []
        for _ in range(60):
            images, classes, _, _ = sampler.batch(8)
            loss = dice_ce_loss(network(images), classes)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        return float(np.mean(losses[-15:]))

    assert late_training_loss(protected) < late_training_loss(study.image) - 0.01


def test_paper_preset_runs_whole_epochs_over_the_roi_slices_with_a_per_epoch_log():
    image, label = lesion_study()  # 6 slices; the lesion is on the middle ones
    roi_slices = int(np.any(label, axis=(1, 2)).sum())
    settings = ProtectSettings(preset="paper", epochs=3, batch_size=2, patch_size=32)
    assert settings.schedule.learning_rate == 1e-4 and not settings.schedule.stop_early
    training = protect(image, label, settings=settings).report["training"]
    per_epoch = -(-roi_slices // 2)
    assert training["iterations_per_epoch"] == per_epoch and training["iterations_run"] == 3 * per_epoch
    assert training["learning_rate"] == 1e-4
    assert [entry["epoch"] for entry in training["history"]] == [1, 2, 3]
    assert all(entry["loss_protected"] > 0 and entry["loss_clean"] > 0 for entry in training["history"])
    # The paper's default is 100 epochs whatever the number of slices; other presets count iterations.
    assert ProtectSettings(preset="paper").training_iterations(40, 16) == 100 * 3
    assert ProtectSettings(preset="fast").training_iterations(40, 16) == 60


def test_iterations_and_epochs_are_exclusive():
    with pytest.raises(InputError, match="either iterations or epochs"):
        ProtectSettings(iterations=5, epochs=2)


def evidence_row(level: str, clean: float, protected: float):
    """A measured evidence row of a U-Net x 3 seeds at budget 4/255."""
    from UMedProtectLib.designs.evidence import Measurement

    return Measurement(level, "synthetic", 4, 0.5, "U-Net x 3 seeds", clean, protected, 48.0, "test")


def test_threat_model_counts_a_level_defeated_only_when_the_clean_twin_worked():
    from UMedProtectLib.designs.evidence import threat_model

    assert threat_model("x", [])["defeats_augmentation"] == []
    assert threat_model("x", [evidence_row("none", 0.60, 0.05)])["defeats_augmentation"] == []  # clean twin failed
    model = threat_model("x", [evidence_row("none", 0.90, 0.11), evidence_row("full", 0.9, 0.8)])
    assert model["defeats_augmentation"] == []
    model = threat_model("x", [evidence_row("flip", 0.90, 0.08), evidence_row("none", 0.90, 0.02),
                               evidence_row("full", 0.9, 0.8)])
    assert model["defeats_augmentation"] == ["none", "flip"]
    assert "none, flip" in model["summary"] and "full" in model["summary"]


def test_threat_model_states_a_partial_effect_without_calling_it_protection():
    from UMedProtectLib.designs.evidence import threat_model

    partial = threat_model("x", [evidence_row("none", 0.84, 0.20), evidence_row("full", 0.9, 0.89)])
    assert partial["defeats_augmentation"] == []
    assert "0.84 -> 0.20" in partial["summary"] and "not demonstrated" in partial["summary"]
    assert "->" not in threat_model("x", [evidence_row("full", 0.9, 0.89)])["summary"]  # seed noise is not an effect


def test_threat_model_names_the_defences_that_break_a_design():
    from dataclasses import replace

    from UMedProtectLib.designs.evidence import threat_model

    defeated = evidence_row("none", 0.90, 0.02)
    rows = [defeated, replace(defeated, defence="blur-1", protected_dsc=0.85),
            replace(defeated, defence="median-3", protected_dsc=0.25)]  # below a third of 0.90: not broken
    model = threat_model("x", rows)
    assert model["broken_by_defences"] == ["blur-1"] and model["defeats_augmentation"] == ["none"]
    assert "preprocessing blur-1 of every image" in model["summary"] and "median-3" not in model["summary"]
    assert threat_model("x", [defeated])["broken_by_defences"] == []
