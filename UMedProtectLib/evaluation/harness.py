"""The evaluation: protect each corpus's training split, train victims on clean and protected data, score them."""

from __future__ import annotations

import platform
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from ..method.measures.texture_change import texture_ratios
from ..progress import CancelFlag, ProgressCallback, check_cancel, emit
from .baselines import ar_in_roi, checker_in_roi, em_pgd, gaussian_in_roi, lsp_in_roi
from .config import UMED, EvaluationConfig
from .corpora.corpus import Corpus, Study
from .corpora.owner import dataset_corpus
from .corpora.registry import load_corpus
from .defences import apply_defence
from .metrics import dice, perturbation_stats
from .nnunet_victim import CONFIGURATIONS as NNUNET_VICTIMS, NnUNetVictim
from .plan import estimate, protected_sets
from .umed import mode_and_design, protect_studies
from .victim_training import predict, train_victim


class _Tracker:
    """Turns units of work (victim training steps) into progress fractions of the whole evaluation."""

    def __init__(self, total: float, callback: Optional[ProgressCallback]):
        self.total, self.done, self.callback = max(total, 1.0), 0.0, callback

    def report(self, stage: str, message: str, extra: float = 0.0) -> None:
        emit(self.callback, stage, (self.done + extra) / self.total, message)

    def advance(self, units: float) -> None:
        self.done += units


def _summary(values: List[float]) -> Dict:
    return {"mean": float(np.mean(values)), "best": float(np.max(values)), "worst": float(np.min(values)),
            "values": [float(v) for v in values]}


def _generate(method: str, epsilon: float, corpus: Corpus, config: EvaluationConfig, device: torch.device,
              tracker: _Tracker, units: float, cancel: CancelFlag) -> Dict:
    """The protected training split of one method at one epsilon, with its statistics and generation log."""
    images, labels = corpus.slices("train")
    stage = f"{corpus.name}: {method} {epsilon * 255:g}/255"
    tracker.report(stage, "generating")
    start = time.monotonic()
    info: Dict = {}
    if method == "gaussian":
        protected, info = gaussian_in_roi(images, labels, epsilon, config.band_width, seed=0)
    elif method == "checker":
        protected, info = checker_in_roi(images, labels, epsilon)
    elif method == "lsp":
        protected, info = lsp_in_roi(images, labels, epsilon, config.band_width, seed=0)
    elif method == "ar":
        protected, info = ar_in_roi(images, labels, epsilon, config.band_width, seed=0)
    elif method == "em-pgd":
        protected, info = em_pgd(
            images, labels, epsilon, config.band_width, seed=0, device=device, rounds=config.em_pgd_rounds,
            surrogate_steps=config.em_pgd_surrogate_steps, pgd_steps=config.em_pgd_steps,
            batch_size=config.recipe.batch_size,
            on_round=lambda r, n, m: tracker.report(stage, f"round {r}/{n}, {m}", units * r / n), cancel=cancel)
    elif method in UMED:
        from ..settings import ProtectSettings

        mode, design = mode_and_design(method)
        settings = ProtectSettings(epsilon=epsilon, band_width=config.band_width, preset=config.umed_preset,
                                   iterations=config.umed_iterations, device=config.device, seed=0)
        settings = settings.with_changes(design=design) if design else settings
        studies, info = protect_studies(mode, corpus.train, settings, config.transfer_fraction,
                                        on_progress=lambda f, m: tracker.report(stage, m, units * f), cancel=cancel)
        protected = np.concatenate(studies)
    else:
        raise ValueError(f"unknown method {method!r}")
    seconds = time.monotonic() - start
    per_study, first = [], 0
    for study in corpus.train:
        last = first + study.image.shape[0]
        per_study.append({"study": study.name, **perturbation_stats(images[first:last], protected[first:last],
                                                                  labels[first:last])})
        first = last
    keys = [k for k in per_study[0] if k != "study"]
    stats = {k: float(np.mean([s[k] for s in per_study])) for k in keys}
    stats["psnr_db"] = perturbation_stats(images, protected, labels)["psnr_db"]  # pooled over the whole split
    tracker.advance(units)
    return {"protected": protected, "seconds": seconds, "stats": stats, "per_study": per_study, "log": info}


def _group_slices(studies: List[Study]) -> Dict[str, np.ndarray]:
    """Indices of the stacked slices of each named study group (empty when no study has a group)."""
    groups: Dict[str, List[np.ndarray]] = {}
    first = 0
    for study in studies:
        last = first + study.image.shape[0]
        if study.group:
            groups.setdefault(study.group, []).append(np.arange(first, last))
        first = last
    return {name: np.concatenate(parts) for name, parts in groups.items()}


def _split_studies(slices: np.ndarray, studies: List[Study]) -> List[np.ndarray]:
    """Stacked slices cut back into the studies they came from."""
    bounds = np.cumsum([s.image.shape[0] for s in studies])[:-1]
    return np.split(slices, bounds)


def _train_seeds(victim: str, corpus: Corpus, images: np.ndarray, test_images: np.ndarray, level: str,
                 config: EvaluationConfig, device: torch.device, tracker: _Tracker, stage: str,
                 cancel: CancelFlag) -> List[Dict]:
    """One victim family trained with every seed on `images` (labels unchanged); each run's test prediction."""
    _, labels = corpus.slices("train")
    _, test_labels = corpus.slices("test")
    runs = []
    if victim in NNUNET_VICTIMS:
        trainer = NnUNetVictim(victim, _split_studies(images, corpus.train), [s.label for s in corpus.train],
                               _split_studies(test_images, corpus.test), config.nnunet, device.type)
        try:
            for seed in config.seeds:
                check_cancel(cancel)
                tracker.report(stage, f"{victim} seed {seed}: nnU-Net planning, training and predicting")
                predictions, seconds = trainer.train_and_predict(seed)
                tracker.advance(config.recipe.steps)
                runs.append({"seed": seed, "prediction": np.concatenate(predictions), "curve": [], "losses": [],
                             "seconds": seconds})
        finally:
            trainer.close()
        return runs
    for seed in config.seeds:
        label = f"{victim} seed {seed}, augmentation {level}"
        trained = train_victim(
            victim, images, labels, config.recipe, seed, device, test=(test_images, test_labels),
            augmentation=level, cancel=cancel,
            on_step=lambda s: tracker.report(stage, f"{label}: step {s}/{config.recipe.steps}", s))
        tracker.advance(config.recipe.steps)
        runs.append({"seed": seed, "prediction": predict(trained.model, test_images, device), "curve": trained.curve,
                     "losses": trained.losses, "seconds": trained.seconds})
    return runs


def _train_all(corpus: Corpus, images: np.ndarray, test_images: np.ndarray, level: str, config: EvaluationConfig,
               device: torch.device, tracker: _Tracker, stage: str, cancel: CancelFlag,
               keep: Optional[Dict] = None) -> Dict:
    """Every victim with every seed on `images` (labels unchanged) at one augmentation level, scored on the test
    split `test_images` (the clean one, after the attacker's defence), also per test group."""
    _, test_labels = corpus.slices("test")
    groups = _group_slices(corpus.test)
    results = {}
    for victim in config.victims:
        runs = _train_seeds(victim, corpus, images, test_images, level, config, device, tracker, stage, cancel)
        for run in runs:
            prediction = run.pop("prediction")
            run["dice"] = dice(prediction, test_labels)
            run["groups"] = {g: dice(prediction[i], test_labels[i]) for g, i in groups.items()}
            by_group = ", ".join(f"{g} {v:.3f}" for g, v in run["groups"].items())
            tracker.report(stage, f"{victim} seed {run['seed']}, augmentation {level}: test DSC {run['dice']:.3f}"
                           + (f" ({by_group})" if by_group else ""))
            if keep is not None and victim == config.victims[0] and run["seed"] == config.seeds[0]:
                keep["prediction"] = prediction
        results[victim] = {"runs": runs, **_summary([r["dice"] for r in runs]),
                           "groups": {g: _summary([r["groups"][g] for r in runs]) for g in groups}}
    return results


def _group_means(victims: Dict) -> Dict[str, Dict[str, float]]:
    """Per test group: mean and best DSC of the seeds, averaged over victim families."""
    names = next(iter(victims.values()))["groups"]
    return {g: {k: float(np.mean([v["groups"][g][k] for v in victims.values()])) for k in ("mean", "best")}
            for g in names}


def _example_slice(corpus: Corpus) -> int:
    """The test slice with the most foreground, for the figure."""
    _, labels = corpus.slices("test")
    return int(np.argmax(labels.reshape(len(labels), -1).sum(axis=1)))


def threat_key(level: str, defence: str) -> str:
    """The results' key of a threat: the augmentation level, with the attacker's defence after a '+' if any."""
    return level if defence == "none" else f"{level}+{defence}"


def evaluate_corpus(corpus: Corpus, config: EvaluationConfig, device: torch.device, tracker: _Tracker,
                    cancel: CancelFlag = None) -> Dict:
    """All methods and victims on one corpus at every threat (augmentation level x the attacker's defence);
    JSON-able results plus figure arrays.

    Each protected training split is generated once and trained on at every threat; each threat has its own clean
    twins, trained on the clean split after the same defence and scored on the test split after it.
    """
    images, train_labels = corpus.slices("train")
    test_images, test_labels = corpus.slices("test")
    example = _example_slice(corpus)
    train_example = int(np.argmax(train_labels.reshape(len(images), -1).sum(axis=1)))
    threats = [(level, defence) for level in config.augmentations for defence in config.defences]
    defended_tests = {defence: apply_defence(defence, test_images) for defence in config.defences}
    levels: Dict[str, Dict] = {}
    for level, defence in threats:
        key, kept = threat_key(level, defence), {}
        clean = _train_all(corpus, apply_defence(defence, images, train_labels), defended_tests[defence], level,
                           config, device, tracker, f"{corpus.name} [{key}]: clean", cancel, kept)
        levels[key] = {
            "augmentation": level, "defence": defence, "clean": clean,
            "clean_mean_dice": float(np.mean([v["mean"] for v in clean.values()])),
            "clean_best_dice": float(np.mean([v["best"] for v in clean.values()])),
            "clean_groups": _group_means(clean), "methods": [],
            "_figure": {"test_image": test_images[example], "test_label": test_labels[example],
                        "clean_prediction": kept["prediction"][example], "methods": {}}}
    for method, epsilon in protected_sets(config):
        check_cancel(cancel)
        generated = _generate(method, epsilon, corpus, config, device, tracker, config.recipe.steps, cancel)
        texture = texture_ratios(images, generated["protected"], train_labels, config.band_width)
        for level, defence in threats:
            key, kept = threat_key(level, defence), {}
            result = levels[key]
            victims = _train_all(corpus, apply_defence(defence, generated["protected"], train_labels),
                                 defended_tests[defence], level, config, device, tracker,
                                 f"{corpus.name} [{key}]: {method} {epsilon * 255:g}/255", cancel, kept)
            for victim, summary in victims.items():
                for run, twin in zip(summary["runs"], result["clean"][victim]["runs"]):
                    run["clean_twin_dice"] = twin["dice"]
            result["_figure"]["methods"][(method, epsilon)] = {
                "train_image": images[train_example], "train_protected": generated["protected"][train_example],
                "prediction": kept["prediction"][example]}
            result["methods"].append({
                "method": method, "epsilon": epsilon, "epsilon_255": round(epsilon * 255, 3), "augmentation": level,
                "defence": defence, "generation_seconds": generated["seconds"],
                "stats": {**generated["stats"], **texture}, "per_study": generated["per_study"],
                "generation_log": generated["log"], "victims": victims,
                "mean_dice": float(np.mean([v["mean"] for v in victims.values()])),
                "best_dice": float(np.mean([v["best"] for v in victims.values()])),
                "groups": _group_means(victims),
            })
    return {"summary": corpus.summary(), "augmentation": levels}


def _device(config: EvaluationConfig) -> torch.device:
    """The config's device, with torch's thread count set as the config asks."""
    from ..method.devices.device import resolve_device

    if config.threads:
        torch.set_num_threads(config.threads)
    return resolve_device(config.device)


def ladder_row(config: EvaluationConfig, progress: Optional[ProgressCallback] = None,
               cancel: CancelFlag = None) -> Dict:
    """One protected row on its own: the config's first method at its epsilon on its first corpus, every victim and
    seed trained on the protected training split at its first augmentation level and scored on the clean test split.

    No clean twins are trained: the row is read against the clean row of an `evaluate` run with the same corpus,
    seeds, recipe and machine (victim training on the CPU is deterministic for a seed on one machine), so rows can
    run side by side in their own processes. The result holds the generation's statistics and log, the victims
    (as in an evaluate result's "victims") and the per-group means.
    """
    device = _device(config)
    method, level = config.methods[0], config.augmentations[0]
    corpus = load_corpus(config.corpora[0], config.quick, config.epsilon)
    tracker = _Tracker(config.recipe.steps * (1 + len(config.victims) * len(config.seeds)), progress)
    generated = _generate(method, config.epsilon, corpus, config, device, tracker, config.recipe.steps, cancel)
    test_images, _ = corpus.slices("test")
    victims = _train_all(corpus, generated["protected"], test_images, level, config, device, tracker,
                         f"{corpus.name} [{level}]: {method} {config.epsilon * 255:g}/255", cancel)
    return {"corpus": corpus.name, "method": method, "augmentation": level, "epsilon_255": config.epsilon * 255,
            "stats": generated["stats"], "generation_log": generated["log"], "victims": victims,
            "groups": _group_means(victims)}


def evaluate(config: EvaluationConfig, progress: Optional[ProgressCallback] = None, cancel: CancelFlag = None,
             on_estimate: Optional[Callable[[Dict], None]] = None) -> Dict:
    """Run the whole evaluation; the result holds every number (and, under "_figure", arrays for the figure)."""
    device = _device(config)
    start = time.monotonic()
    emit(progress, "corpora", 0.0, "loading " + ", ".join(config.corpora))
    corpora = [load_corpus(name, config.quick, config.epsilon) for name in config.corpora]
    if config.dataset:
        corpora.append(dataset_corpus(config.dataset))
    shapes = {c.name: {"shape": c.train[0].image.shape[1:], "train_slices": c.summary()["train_slices"],
                       "train_studies": len(c.train)} for c in corpora}
    expected = estimate(config, shapes, device)
    if on_estimate is not None:
        on_estimate(expected)
    units_per_corpus = (config.recipe.steps * len(config.victims) * len(config.seeds) * len(config.augmentations)
                        * len(config.defences)
                        * (1 + len(protected_sets(config))))
    units_per_corpus += config.recipe.steps * len(protected_sets(config))
    tracker = _Tracker(units_per_corpus * len(corpora), progress)
    results = {}
    for corpus in corpora:
        results[corpus.name] = evaluate_corpus(corpus, config, device, tracker, cancel)
    emit(progress, "done", 1.0, f"finished in {time.monotonic() - start:.0f} s")
    return {
        "config": config.to_dict(),
        "environment": {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
                        "python": platform.python_version(), "machine": platform.machine()},
        "expected_seconds": expected["seconds"],
        "seconds": time.monotonic() - start,
        "corpora": results,
    }
