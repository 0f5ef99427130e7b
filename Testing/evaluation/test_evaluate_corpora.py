"""Tests of the evaluation's harder and real corpora: the synthetic contrast ladder, the faint lesions, the 3D nuclei
volume and the owner's own dataset (`umed-protect evaluate --dataset`)."""

import numpy as np
import pytest
import SimpleITK as sitk

from UMedProtectLib.errors import InputError
from UMedProtectLib.evaluation.corpora.contrast import GROUPS, MULTIPLES, contrast_corpus
from UMedProtectLib.evaluation.corpora.corpus import normalise_percentiles
from UMedProtectLib.evaluation.corpora.faint import faint_corpus, faint_slices
from UMedProtectLib.evaluation.corpora.owner import dataset_corpus
from UMedProtectLib.evaluation.metrics import roi_contrast

from evaluation_testing import split_gap, stardist_or_skip


def test_contrast_corpus_has_its_lesion_contrast_at_multiples_of_epsilon():
    epsilon = 4 / 255
    corpus = contrast_corpus(epsilon, studies_per_group=(1, 1))
    assert [s.group for s in corpus.train] == list(GROUPS) == [s.group for s in corpus.test]
    assert not {s.name for s in corpus.train} & {s.name for s in corpus.test}
    for study in corpus.train + corpus.test:
        multiple = float(study.group.split("x ")[0])
        # The lesion's mean against the ring just outside it is the chosen multiple, up to noise and the field.
        assert roi_contrast(study.image, study.label) == pytest.approx(multiple * epsilon, abs=0.35 * epsilon)
        # The robust range is exactly [0, 1]: the engine's own normalisation leaves the image unchanged.
        np.testing.assert_array_equal(normalise_percentiles(study.image), study.image)
    sizes = {g: np.mean([s.label.sum() for s in corpus.train + corpus.test if s.group == g]) for g in GROUPS}
    for multiple in MULTIPLES:
        assert sizes[f"{multiple}x large"] > 2 * sizes[f"{multiple}x small"]


def test_contrast_corpus_noise_is_controlled_and_reproducible():
    quiet = contrast_corpus(4 / 255, noise=0.0, studies_per_group=(1, 1))
    noisy = contrast_corpus(4 / 255, noise=6 / 255, studies_per_group=(1, 1))
    again = contrast_corpus(4 / 255, noise=6 / 255, studies_per_group=(1, 1))
    np.testing.assert_array_equal(noisy.train[0].image, again.train[0].image)
    inside = (quiet.train[0].image > 0) & (quiet.train[0].image < 1)
    difference = (noisy.train[0].image - quiet.train[0].image)[inside]
    assert difference.std() == pytest.approx(6 / 255, rel=0.1)
    np.testing.assert_array_equal(quiet.train[0].label, noisy.train[0].label)


def test_faint_corpus_is_the_benchmarks_slices_with_the_range_pinned():
    epsilon = 4 / 255
    corpus = faint_corpus(2.5, epsilon, train_slices=20, test_slices=10)
    assert [len(s.image) for s in corpus.train] == [10, 10] and len(corpus.test) == 1
    images, labels = faint_slices(20, 2.5, epsilon, seed=1)
    pinned, pinned_labels = corpus.slices("train")
    np.testing.assert_array_equal(pinned_labels, labels)
    np.testing.assert_array_equal(pinned[:, 1:-1], images[:, 1:-1])  # only the two pinning rows differ
    assert not labels[:, [0, -1]].any()  # the lesions keep clear of them
    for study in corpus.train + corpus.test:
        # The robust range is exactly [0, 1]: a budget as a fraction of it is one in the images' units.
        np.testing.assert_array_equal(normalise_percentiles(study.image), study.image)


def test_nuclei_3d_corpus_split_by_slab_with_guards():
    from UMedProtectLib.evaluation.corpora.nuclei import nuclei_3d_corpus

    corpus = stardist_or_skip(nuclei_3d_corpus)
    assert split_gap(corpus) >= 3  # one guard slice on each side
    images, labels = corpus.slices("train")
    assert images.shape[1:] == (61, 57) and images.shape[0] >= 12 and corpus.summary()["test_slices"] >= 4
    assert 0.05 < labels.mean() < 0.8 and images.min() >= 0 and images.max() <= 1


def _write_study(path, label_path, seed: int, size=(5, 24, 20), label_slices=(1, 2, 3)):
    rng = np.random.default_rng(seed)
    image = (rng.integers(0, 1000, size)).astype(np.int16)
    label = np.zeros(size, np.uint8)
    for z in label_slices:
        label[z, 5:12, 4:10] = 1 + z % 2  # two label values: both become the target
    sitk.WriteImage(sitk.GetImageFromArray(image), str(path))
    sitk.WriteImage(sitk.GetImageFromArray(label), str(label_path))
    return image, label


def test_dataset_corpus_reads_a_folder_and_splits_by_study(tmp_path):
    originals = {}
    for index in range(5):
        size = (5, 24, 20) if index != 2 else (4, 20, 26)
        image_path, label_path = tmp_path / f"case{index}.nrrd", tmp_path / f"case{index}_label.nii.gz"
        originals[f"case{index}"] = _write_study(image_path, label_path, index, size)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    corpus = dataset_corpus(tmp_path)
    assert [s.name for s in corpus.test] == ["case3"]
    assert [s.name for s in corpus.train] == ["case0", "case1", "case2", "case4"]
    assert corpus.name == f"dataset-{tmp_path.name}"
    images, labels = corpus.slices("train")
    assert images.shape[1:] == (24, 26)  # the largest height and width found
    assert images.min() >= 0 and images.max() <= 1 and set(np.unique(labels)) == {0, 1}
    case0 = corpus.train[0]
    assert case0.source_slices == [1, 2, 3]  # only the labelled slices
    image, label = originals["case0"]
    np.testing.assert_array_equal(case0.label[:, :, 3:23], label[1:4] > 0)
    np.testing.assert_allclose(case0.image[:, :, 3:23], normalise_percentiles(image.astype(np.float32))[1:4])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # inputs untouched


def test_dataset_corpus_reads_a_csv_and_refuses_too_few_studies(tmp_path):
    for index in range(2):
        _write_study(tmp_path / f"a{index}.nrrd", tmp_path / f"a{index}_seg.nrrd", index)
    (tmp_path / "list.csv").write_text("image,label\na0.nrrd,a0_seg.nrrd\na1.nrrd,a1_seg.nrrd\n")
    corpus = dataset_corpus(tmp_path / "list.csv")
    assert [s.name for s in corpus.train] == ["a0"] and [s.name for s in corpus.test] == ["a1"]
    (tmp_path / "one.csv").write_text("image,label\na0.nrrd,a0_seg.nrrd\n")
    with pytest.raises(InputError, match="at least 2"):
        dataset_corpus(tmp_path / "one.csv")
