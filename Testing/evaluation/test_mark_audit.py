"""The audit as an evaluation axis, reduced: a real victim trained on clean synth-faint, audited with many keys."""

import numpy as np
import pytest
import torch
from scipy import stats

from UMedProtectLib.evaluation.corpora.registry import load_corpus
from UMedProtectLib.evaluation.mark_audit import (AuditSetup, evaluation_key, marked_split, probes_for, validity,
                                                 visibility_of_marks)
from UMedProtectLib.evaluation.victim_training import Recipe, train_victim


@pytest.mark.slow
def test_a_victim_that_never_saw_the_keys_rejects_no_more_than_alpha():
    """50 audits of one clean-trained U-Net (19 controls, one probe study each): the p-values lie on the grid k/20
    and are not biased towards small values (one-sided binomial test of the rejections at 0.05 and 0.25, at the
    0.001 level: the p-values of one model's audits with independent keys are independent and uniform by
    construction, so chance alone fails this fixed-seed test at most once in a thousand seeds)."""
    torch.manual_seed(0)
    corpus = load_corpus("synth-faint")
    images, labels = corpus.slices("train")
    model = train_victim("unet", images, labels, Recipe(steps=60), 0, torch.device("cpu"), augmentation="flip").model
    result = validity(model, corpus, AuditSetup(controls=19, probe_studies=1), "none", torch.device("cpu"), 50)
    p_values = np.array(result["p_values"])
    assert len(p_values) == 50 and set(np.round(p_values * 20, 6)) <= set(range(1, 21))
    for alpha in (0.05, 0.25):
        rejected = int(np.count_nonzero(p_values <= alpha))
        assert stats.binomtest(rejected, 50, alpha, alternative="greater").pvalue > 0.001, (alpha, p_values)


def test_marking_changes_only_the_roi_and_its_band_and_reports_its_visibility():
    corpus = load_corpus("synth-faint")
    clean, labels = corpus.slices("train")
    setup = AuditSetup(amplitude=4 / 255, marked_share=0.5)
    marked = marked_split(corpus, evaluation_key(0), setup)
    changed = np.abs(marked - clean) > 0
    marked_slices = sum(len(study.image) for study in corpus.train[:round(0.5 * len(corpus.train))])
    assert not changed[marked_slices:].any() and changed[:marked_slices].any()
    assert np.abs(marked - clean).max() <= 4 / 255 + 1e-6
    figures = visibility_of_marks(corpus, evaluation_key(0), setup)
    assert figures["psnr_db"] > 40 and 0.8 < figures["roi_texture_ratio"] < 1.25


def test_probe_answers_are_read_in_the_order_the_probes_were_made():
    """A suspect that labels the ROI only where the key's mark is stamped ranks the key first: the probes' order
    (marks x studies) and the responses' agree."""
    corpus = load_corpus("synth-faint")
    probes = probes_for(corpus, evaluation_key(3), AuditSetup(controls=9, probe_studies=2), "none")
    assert len(probes.volumes) == 10 * 2 and len(probes.rois) == 2
    answers = [probes.rois[index % 2] if index // 2 == probes.position else np.zeros_like(probes.rois[index % 2])
               for index in range(len(probes.volumes))]
    result = probes.test(answers)
    assert result["rank"] == 1 and result["p_value"] == 0.1 and result["predictions"] == 20
