"""Tests of the real-noise corpus `ct-faint`: faint lesions inserted into the brain of Debian's invesalius-examples
head CT (skipped where that package is not installed)."""

import numpy as np
import pytest
from scipy import ndimage

from UMedProtectLib.errors import InputError
from UMedProtectLib.evaluation.corpora import ct_lesions
from UMedProtectLib.evaluation.corpora.corpus import normalise_percentiles
from UMedProtectLib.evaluation.corpora.registry import load_corpus

from evaluation_testing import split_gap

EPSILON = 4 / 255


@pytest.fixture(scope="module")
def corpora():
    """The corpus at 2.5 x epsilon and at 0 x epsilon (the same labels on the unchanged CT)."""
    try:
        return {multiple: ct_lesions.ct_faint_corpus(multiple, EPSILON) for multiple in (2.5, 0.0)}
    except InputError as error:
        pytest.skip(f"the head CT of Debian's invesalius-examples is not installed ({error})")


def test_the_corpus_loads_by_name_with_its_sizes_and_a_split_that_shares_no_slab(corpora):
    corpus = corpora[2.5]
    named = load_corpus("ct-faint", epsilon=EPSILON)
    np.testing.assert_array_equal(named.slices("train")[0], corpus.slices("train")[0])
    summary = corpus.summary()
    assert summary["slice_shape"] == [64, 64]
    assert 150 <= summary["train_slices"] <= 200 and 50 <= summary["test_slices"] <= 70
    assert all(len(s.image) <= 10 for s in corpus.train + corpus.test)
    assert split_gap(corpus) >= 3  # one guard slice on each side of every train/test boundary
    assert {s.group for s in corpus.test} == {"hypo", "hyper"}
    for study in corpus.train + corpus.test:
        assert study.image.dtype == np.float32 and study.image.min() >= 0 and study.image.max() <= 1
        # The robust range is exactly [0, 1]: a budget as a fraction of it is one in the images' units.
        np.testing.assert_array_equal(normalise_percentiles(study.image), study.image)
        assert study.label.any() and not study.label[:, [0, 1, -2, -1]].any()


def test_labels_are_the_inserted_lesions_at_the_asked_contrast_with_a_partial_volume_edge(corpora):
    change = 2.5 * EPSILON
    for lesioned, plain in zip(corpora[2.5].train + corpora[2.5].test, corpora[0.0].train + corpora[0.0].test):
        np.testing.assert_array_equal(lesioned.label, plain.label)
        label = lesioned.label.astype(bool)
        inserted = (lesioned.image.astype(np.float64) - plain.image) * (1 if lesioned.group == "hyper" else -1)
        core = ndimage.binary_erosion(label, np.ones((1, 5, 5)))
        rim = label & ~ndimage.binary_erosion(label, np.ones((1, 3, 3)))
        outside = ndimage.binary_dilation(label, np.ones((1, 3, 3))) & ~label
        # A lesion's cap between two slices, or a bump of its rough surface, reaches up to 2 slices beyond its label.
        far = ~ndimage.binary_dilation(label, np.ones((5, 9, 9)))
        assert inserted.min() >= -1e-6 and inserted.max() == pytest.approx(change, abs=1e-6)
        if core.any():
            assert np.median(inserted[core]) == pytest.approx(change, abs=1e-6)
        # The edge is a partial volume: at least half the change on the label's own rim, under half just outside.
        assert inserted[rim].min() >= 0.5 * change - 1e-6 and inserted[rim].mean() < 0.95 * change
        assert inserted[~label].max() <= 0.5 * change + 1e-6 and inserted[outside].mean() > 0.02 * change
        assert np.abs(inserted[far]).max() < 0.01 * change  # only the Gaussian step's far tail
    # Measured on the images alone: inside against a ring just outside, in the lesions' sign, is near the asked
    # contrast (anatomy and noise in the ring average out over the studies; the edge lowers it a little).
    signed = [(1 if s.group == "hyper" else -1) * _inside_minus_ring(s.image, s.label) for s in corpora[2.5].train]
    assert 0.6 * change < np.mean(signed) < 1.2 * change


def _inside_minus_ring(image: np.ndarray, label: np.ndarray) -> float:
    """Mean inside the label minus the mean of a 3-pixel ring just outside it, over a study."""
    label = label.astype(bool)
    ring = ndimage.binary_dilation(label, np.ones((1, 7, 7))) & ~label
    return float(image[label].mean() - image[ring].mean())


def test_the_images_carry_the_cts_own_noise_of_about_the_budget(corpora):
    images, labels = corpora[2.5].slices("train")
    noise = ct_lesions.brain_noise(images, labels)
    assert 0.5 * EPSILON < noise < 2 * EPSILON  # real noise, well above zero: about the budget in this window
    plain, _ = corpora[0.0].slices("train")
    assert ct_lesions.brain_noise(plain, labels) == pytest.approx(noise, rel=1e-3)  # lesions are left out


def test_a_missing_source_is_one_input_error_with_the_install_hint(monkeypatch, tmp_path):
    monkeypatch.setattr(ct_lesions, "SOURCE", tmp_path / "Cranium.inv3")
    ct_lesions.brain_ct.cache_clear()
    try:
        with pytest.raises(InputError, match="apt-get install invesalius-examples"):
            load_corpus("ct-faint")
    finally:
        ct_lesions.brain_ct.cache_clear()
