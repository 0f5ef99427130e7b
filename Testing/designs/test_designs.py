"""The design registry and the quiet designs' promise: the ROI loses its noise (quiet-rim: inside a louder band),
within the budget, nothing else."""

import numpy as np
import pytest
import torch

from UMedProtectLib import ProtectSettings, protect
from UMedProtectLib.designs import DESIGNS
from UMedProtectLib.method.perturbations.denoising_perturbation import gaussian_blur

from conftest import perturbable_region


def noisy_square_study(noise: float, contrast: float = 20.0, seed: int = 0):
    """Noisy soft tissue between air and bone strips (a CT-like range of 600) with one square target."""
    rng = np.random.default_rng(seed)
    image = 300.0 + noise * rng.standard_normal((4, 56, 56))
    image[:, :, :5], image[:, :, -5:] = 0.0, 600.0
    label = np.zeros(image.shape, np.uint8)
    label[:, 16:40, 18:40] = 1
    image[label > 0] += contrast
    return image.astype(np.float32), label


def test_every_design_builds_a_module_with_the_common_interface():
    x = torch.rand(2, 1, 32, 32)
    band, interior = torch.zeros_like(x), torch.zeros_like(x)
    band[..., 8:24, 8:10] = 1
    interior[..., 10:22, 10:22] = 1
    for name, design in DESIGNS.items():
        if design.build is None:  # `none`: nothing to build, only a mark changes the study
            continue
        with torch.no_grad():
            delta = design.build(ProtectSettings(design=name))(x, band, interior, 4 / 255)
        assert delta.shape == x.shape and float(delta.abs().max()) <= 4 / 255 + 1e-7, name
        assert float(delta[(band + interior) == 0].abs().max()) == 0.0, name


def test_gaussian_blur_keeps_constants_and_sums():
    flat = torch.full((1, 1, 12, 9), 0.3)
    assert torch.allclose(gaussian_blur(flat, 1.5), flat)
    tiny = torch.rand(1, 1, 3, 3)  # smaller than the kernel: still defined
    assert gaussian_blur(tiny, 1.5).shape == tiny.shape


@pytest.mark.parametrize("design", ["quiet", "quiet-rim"])
def test_quiet_designs_remove_the_rois_noise_within_the_budget_and_nothing_else(design):
    noise = 6.0
    image, label = noisy_square_study(noise)
    settings = ProtectSettings(design=design, iterations=3, batch_size=2, patch_size=32)
    result = protect(image, label, settings=settings)
    epsilon_native = result.report["epsilon_native"]
    assert epsilon_native > noise  # the regime where the noise can be taken out
    protected = result.protected.astype(np.float64)
    core = np.zeros(label.shape, bool)
    core[:, 19:37, 21:37] = True  # away from the contour, where only the denoising acts
    before, after = image[core].std(), protected[core].std()
    assert after < 0.5 * before, (before, after)
    region = perturbable_region(label, [1], settings.band_width)
    assert np.array_equal(protected[~region], image[~region])
    assert np.abs(protected - image).max() <= epsilon_native * (1 + 1e-5)
    assert result.report["settings"]["design"] == design
    # PSNR does not see a denoised ROI; the report's texture ratio does, and warns.
    assert result.report["texture"]["roi_texture_ratio"] < 0.5
    assert any("ROI may look visibly smoother" in warning for warning in result.report["warnings"])


def test_quiet_rim_amplifies_the_bands_noise_and_fits_nothing(tmp_path):
    from UMedProtectLib.method.profile import load_profile, save_profile

    image, label = noisy_square_study(6.0)
    result = protect(image, label, settings=ProtectSettings(design="quiet-rim", batch_size=2, patch_size=32))
    rim = perturbable_region(label, [1], 3) & (label == 0)
    assert result.protected[rim].std() > 1.5 * image[rim].std(), (image[rim].std(), result.protected[rim].std())
    # Hand-made: no iteration, no weights, yet a profile that is saved and applied like any other.
    assert result.report["training"]["iterations_run"] == 0 and result.profile.state == {}
    save_profile(result.profile, tmp_path / "rim.pt")
    again = protect(image, label, settings=ProtectSettings(design="quiet-rim"),
                    profile=load_profile(tmp_path / "rim.pt"))
    np.testing.assert_array_equal(again.protected, result.protected)


def test_unknown_design_is_refused_with_the_list():
    from UMedProtectLib import InputError

    with pytest.raises(InputError, match="published, carrier, quiet"):
        ProtectSettings(design="loud")


@pytest.mark.slow
@pytest.mark.parametrize("design, augmentation, victim, steps, meets_target", [
    ("quiet", "none", "unet", 150, False), ("quiet-rim", "flip", "unet", 150, False),
    ("quiet-rim", "full", "fpn", 600, True)])
def test_quiet_designs_lower_victims_on_faint_lesions(design, augmentation, victim, steps, meets_target):
    """The direction, asserted where the designs take effect (docs/results/faint-lesions.md): the harness's faint
    lesions (synth-faint, 2.5 x epsilon), whose clean twin must reach the criterion's 0.70; the target itself where it
    was met.

    Measured at these sizes (seed 0): U-Net, 150 steps, augmentation none, clean 0.767, quiet 0.157 at 45.7 dB; flips,
    clean 0.772, quiet-rim 0.295 at 45.3 dB. Neither meets the 0.10 target, so they ask for the direction with a
    margin for other machines (the smallest drop measured is 0.48): at least 0.3 below the clean twin. FPN, 600
    steps, full augmentation: clean 0.817, quiet-rim 0.018, the target met (docs/results/synth-faint-full.md),
    so it asks for the target.
    """
    from UMedProtectLib import fit_profile
    from UMedProtectLib.designs.evidence import CLEAN_DSC, DEFEATED_DSC
    from UMedProtectLib.evaluation.corpora.faint import faint_corpus
    from UMedProtectLib.evaluation.metrics import dice
    from UMedProtectLib.evaluation.victim_training import Recipe, predict, train_victim

    corpus = faint_corpus()
    images, labels = corpus.slices("train")
    test_images, test_labels = corpus.slices("test")
    settings = ProtectSettings(design=design, device="cpu", epsilon=4 / 255, epsilon_unit="units")
    profile = fit_profile([(images, labels)], settings)
    protected = protect(images, labels, settings=settings, profile=profile).protected.astype(np.float32)
    assert np.abs(protected - images).max() <= 4 / 255 + 1e-6
    scores = {}
    for name, train_images in (("clean", images), (design, protected)):
        model = train_victim(victim, train_images, labels, Recipe(steps=steps), 0, torch.device("cpu"),
                             augmentation=augmentation).model
        scores[name] = dice(predict(model, test_images, torch.device("cpu")), test_labels)
    assert scores["clean"] >= CLEAN_DSC, scores  # a corpus whose clean twin fails measures nothing
    assert scores[design] <= (DEFEATED_DSC if meets_target else scores["clean"] - 0.3), scores
