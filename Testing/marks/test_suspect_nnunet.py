"""`audit verdict --nnunet-model`: a suspect nnU-Net run here, its checkpoints loaded as data only."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from test_marks import held_out, key_file, one_line_error, run


class _Payload:
    """What a hostile checkpoint carries: unpickling it would create `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _model_folder(tmp_path: Path, checkpoint: dict) -> Path:
    folder = tmp_path / "model"
    (folder / "fold_0").mkdir(parents=True)
    (folder / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "file_ending": ".nii.gz"}))
    (folder / "plans.json").write_text("{}")
    torch.save(checkpoint, folder / "fold_0" / "checkpoint_final.pth")
    return folder


def _probes(tmp_path: Path, capsys) -> tuple:
    key = key_file(tmp_path)
    probes = tmp_path / "probes"
    assert run(["audit", "prepare", "--key", key, "--studies", held_out(tmp_path, 1), "--out", probes,
                "--controls", 4, "--progress", "none"], capsys)[0] == 0
    return key, probes


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path, capsys):
    pytest.importorskip("nnunetv2")
    key, probes = _probes(tmp_path, capsys)
    marker = tmp_path / "ran"
    model = _model_folder(tmp_path, {"network_weights": {}, "trainer_name": _Payload(marker)})
    code, _, err = run(["audit", "verdict", "--key", key, "--probes", probes, "--nnunet-model", model,
                        "--progress", "none"], capsys)
    assert one_line_error(code, err) and "run its code" in err
    assert not marker.exists()


def test_a_folder_that_is_no_nnunet_model_gets_one_line(tmp_path, capsys):
    key, probes = _probes(tmp_path, capsys)
    code, _, err = run(["audit", "verdict", "--key", key, "--probes", probes, "--nnunet-model", tmp_path,
                        "--progress", "none"], capsys)
    assert one_line_error(code, err) and "not an nnU-Net trained-model folder" in err
    code, _, err = run(["audit", "verdict", "--key", key, "--probes", probes, "--progress", "none"], capsys)
    assert code == 2 and "--predictions" in err  # one of the two answers is required


@pytest.mark.slow
def test_a_trained_nnunet_answers_every_probe_and_gets_a_verdict(tmp_path, capsys):
    """nnU-Net v2 trained here for 1 epoch of 2 batches (its own planning and trainer), then audited by folder."""
    pytest.importorskip("nnunetv2")
    from UMedProtectLib.evaluation.nnunet_victim import NnUNetRecipe, NnUNetVictim
    from test_marks import disc_study

    studies = [disc_study(seed) for seed in range(10, 16)]
    volumes = [np.repeat(image, 4, axis=0).astype(np.float32) for image, _ in studies]
    labels = [np.repeat(label, 4, axis=0) for _, label in studies]
    victim = NnUNetVictim("nnunet-2d", volumes, labels, volumes[:1], NnUNetRecipe(epochs=1, iterations=2), "cpu")
    try:
        victim.train_and_predict(0)
        model = next((victim.root / "results-seed0").glob("Dataset*/nnUNetTrainer__nnUNetPlans__2d"))
        key, probes = _probes(tmp_path, capsys)
        code, out, err = run(["audit", "verdict", "--key", key, "--probes", probes, "--nnunet-model", model,
                              "--folds", "all", "--report", tmp_path / "verdict.json", "--progress", "none"], capsys)
    finally:
        victim.close()
    assert code == 0, err
    report = json.loads((tmp_path / "verdict.json").read_text())
    assert report["test"]["marks"] == 5 and report["test"]["studies"] == 1 and "p = " in out
