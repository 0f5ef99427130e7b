"""A suspect nnU-Net v2 model run over the probes here: its trained-model folder, its weights loaded as data only.

nnU-Net's own predictor unpickles whole checkpoints (`weights_only=False`), which runs whatever code a checkpoint
names; a suspect's model is exactly the file one must not trust, so the checkpoints are read with
`torch.load(weights_only=True)` (numpy's scalars allowed, as nnU-Net's training log holds them) and handed to
nnU-Net's predictor. The network is rebuilt from the folder's plans by nnU-Net's default trainer, as for every
trainer that keeps nnU-Net's architecture; one that builds its own network is refused.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import List, Optional, Sequence

import torch

from ..errors import InputError
from .audit import PROBE_EXTENSION

CHECKPOINT = "checkpoint_final.pth"


def _load_weights_only(path: Path) -> dict:
    """A checkpoint's tensors and plain values; a checkpoint that needs code to load is refused."""
    import numpy as np

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1 kept it under its old name
        from numpy.core.multiarray import scalar
    allowed = [scalar, np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32)),
               type(np.dtype(np.int64))]
    try:
        with torch.serialization.safe_globals(allowed):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler's refusals have several types
        raise InputError(f"'{path}' holds more than weights and plain values; refused, as loading it would run its "
                         f"code ({type(error).__name__})") from None
    if not isinstance(checkpoint, dict) or "network_weights" not in checkpoint:
        raise InputError(f"'{path}' is not an nnU-Net checkpoint (no network_weights)")
    return checkpoint


def model_folds(results: Path, folds: Optional[Sequence[str]]) -> List[Path]:
    """The checkpoints of `folds` (every `fold_*` with a final checkpoint when None) in an nnU-Net model folder."""
    for name in ("dataset.json", "plans.json"):
        if not (results / name).is_file():
            raise InputError(f"'{results}' is not an nnU-Net trained-model folder (no {name}); give the folder "
                             f"that holds dataset.json, plans.json and fold_*/")
    names = [f"fold_{fold}" for fold in folds] if folds else sorted(
        path.name for path in results.glob("fold_*") if (path / CHECKPOINT).is_file())
    paths = [results / name / CHECKPOINT for name in names]
    missing = [str(path) for path in paths if not path.is_file()]
    if not paths or missing:
        raise InputError(f"no {CHECKPOINT} in '{missing[0] if missing else results}'")
    return paths


def predict_probes(results: Path, probe_files: Sequence[Path], out: Path, folds: Optional[Sequence[str]] = None,
                   device: str = "cpu") -> None:
    """nnU-Net's predictor (its sliding window and mirroring) with the model in `results` over `probe_files`,
    one label map per probe in `out`, named as the probe."""
    if importlib.util.find_spec("nnunetv2") is None:
        raise InputError("--nnunet-model needs the 'nnunetv2' package: pip install nnunetv2")
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    checkpoints = [_load_weights_only(path) for path in model_folds(results, folds)]
    dataset = json.loads((results / "dataset.json").read_text())
    plans = PlansManager(json.loads((results / "plans.json").read_text()))
    first = checkpoints[0]
    configuration = plans.get_configuration(first["init_args"]["configuration"])
    inputs = determine_num_input_channels(plans, configuration, dataset)
    if inputs != 1:
        raise InputError(f"the model in '{results}' reads {inputs} channels; the probes have one")
    network = nnUNetTrainer.build_network_architecture(
        plans, configuration, inputs, plans.get_label_manager(dataset).num_segmentation_heads,
        enable_deep_supervision=False)
    try:
        network.load_state_dict(first["network_weights"])
    except RuntimeError:
        raise InputError(f"the weights in '{results}' do not fit nnU-Net's network for its plans (trainer "
                         f"{first.get('trainer_name')} builds its own network, which is not supported)") from None
    predictor = nnUNetPredictor(device=torch.device(device), allow_tqdm=False)
    predictor.manual_initialization(network, plans, configuration, [c["network_weights"] for c in checkpoints],
                                    dataset, str(first.get("trainer_name")),
                                    first.get("inference_allowed_mirroring_axes"))
    out.mkdir(parents=True, exist_ok=True)
    names = [str(out / path.name[:-len(PROBE_EXTENSION)]) for path in probe_files]
    predictor.predict_from_files_sequential([[str(path)] for path in probe_files], names, save_probabilities=False,
                                            overwrite=False)
