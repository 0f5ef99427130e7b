"""One nnU-Net v2 run in its own process: plan and preprocess (once per dataset), train one seed, predict the test
cases.

nnU-Net reads its folders from the environment when it is imported (nnUNet_raw, nnUNet_preprocessed,
nnUNet_results), so every run gets a fresh process with them set (nnunet_victim.py starts it). Training is the
default trainer, `nnUNetTrainer`, with only its length changed, which is all its `nnUNetTrainer_Xepochs` variants
do: those cannot be looked up by name on a CPU-only torch, because nnU-Net's trainer search imports its Primus
trainers, which need a torchvision built for CUDA. Augmentation, loss, network, normalisation and resampling are
nnU-Net's own, untouched. The test cases are predicted with nnU-Net's predictor over the network just trained (as
nnU-Net's own final validation does), so no checkpoint is loaded.

    python -m UMedProtectLib.evaluation.nnunet_worker DATASET_ID CONFIGURATION SEED EPOCHS ITERATIONS DEVICE TEST_DIR \
        OUT_DIR
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np
import torch


def plan_once(dataset_id: int, configuration: str) -> None:
    """nnU-Net's fingerprint, experiment planning and preprocessing of one configuration (skipped when done)."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprints, plan_experiments, preprocess
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    name = maybe_convert_to_dataset_name(dataset_id)
    if (Path(os.environ["nnUNet_preprocessed"]) / name / f"nnUNetPlans_{configuration}").is_dir():
        return
    extract_fingerprints([dataset_id], num_processes=1, check_dataset_integrity=True)
    plan_experiments([dataset_id])
    preprocess([dataset_id], configurations=(configuration,), num_processes=(1,))


def train_and_predict(dataset_id: int, configuration: str, seed: int, epochs: int, iterations: int, device: str,
                      test_dir: str, out_dir: str) -> None:
    """Train nnU-Net on all training cases (fold 'all') with `seed`, then write its predictions of `test_dir`."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.run.run_training import get_trainer_from_args

    # Augmentation in this process, from the seeded generators, so that a run and its clean twin are repeatable
    # (read when training starts; planning needs its default, a positive thread count).
    os.environ["nnUNet_n_proc_DA"] = "0"
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    trainer = get_trainer_from_args(str(dataset_id), configuration, "all", "nnUNetTrainer", device=torch.device(device))
    trainer.num_epochs = epochs
    trainer.num_iterations_per_epoch = iterations
    # nnU-Net's default is 50 validation batches per epoch of 250 training ones; the ratio is kept.
    trainer.num_val_iterations_per_epoch = max(1, iterations // 5)
    trainer.run_training()
    trainer.set_deep_supervision_enabled(False)  # as nnU-Net's own validation does before predicting
    trainer.network.eval()
    predictor = nnUNetPredictor(device=torch.device(device), allow_tqdm=False)
    predictor.manual_initialization(trainer.network, trainer.plans_manager, trainer.configuration_manager,
                                    [trainer.network.state_dict()], trainer.dataset_json, type(trainer).__name__,
                                    trainer.inference_allowed_mirroring_axes)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    predictor.predict_from_files_sequential(test_dir, out_dir, save_probabilities=False, overwrite=True)


def main(argv=None) -> int:
    """Entry point of the worker process."""
    dataset_id, configuration, seed, epochs, iterations, device, test_dir, out_dir = (argv or sys.argv[1:])
    plan_once(int(dataset_id), configuration)
    train_and_predict(int(dataset_id), configuration, int(seed), int(epochs), int(iterations), device, test_dir,
                      out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
