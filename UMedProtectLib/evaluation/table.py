"""The Markdown tables of an evaluation: methods x victims at the table's epsilon, the epsilon sweep, and a closing
verdict per corpus."""

from __future__ import annotations

from typing import Dict, List

from ..designs import DESIGNS
from ..designs.evidence import CLEAN_DSC, DEFEATED_DSC
from .nnunet_victim import CONFIGURATIONS as NNUNET_VICTIMS

_MODE_PHRASES = {"umed-per-study": "per study", "umed-dataset": "fitted on training set",
                 "umed-transfer": "profile from part of set"}
ROW_NAMES = {"clean": "clean (no protection)", "gaussian": "Gaussian noise in ROI",
             "checker": "fixed checker in ROI (hand-made shortcut)", "em-pgd": "EM-PGD (Huang et al.)",
             "lsp": "LSP, class-wise per pixel (Yu et al.)",
             "ar": "AR noise, class-wise per pixel (Sandoval-Segura et al.)",
             **{mode: f"UMed, {phrase}" for mode, phrase in _MODE_PHRASES.items()},
             **{f"umed-{design}-{mode[len('umed-'):]}": f"UMed {design} design, {phrase}"
                for design in DESIGNS for mode, phrase in _MODE_PHRASES.items()}}


# Visibility as the engine's report and the Slicer panel state it (docs/cli.md, `visibility`).
VISIBLE_HEADER = "ROI visibly changed %"


def _cell(summary: Dict) -> str:
    return f"{summary['mean']:.3f} / {summary['best']:.3f}"


def visible_cell(stats: Dict) -> str:
    """The share of ROI voxels changed by more than one grey level of the reading window, in percent."""
    value = stats.get("roi_visible_fraction")
    return "-" if value is None else f"{100 * value:.1f}"


def main_table(corpus: str, result: Dict, epsilon: float, victims: List[str]) -> str:
    """Rows clean / baselines / UMed modes; per victim "mean / best of seeds" DSC, then mean DSC, the share of ROI
    voxels visibly changed in the reading window (as in the engine's report), PSNR on the robust range, SSIM."""
    header = ["method"] + [f"{v} DSC" for v in victims] + ["mean DSC", VISIBLE_HEADER, "PSNR dB", "SSIM",
                                                           "L-inf / noise"]
    lines = [f"**{corpus}** ({result['summary']['train_slices']} train / {result['summary']['test_slices']} test "
             f"slices), epsilon {epsilon * 255:g}/255, DSC as mean / best of seeds",
             "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    clean = result["clean"]
    clean_means = f"{result['clean_mean_dice']:.3f} / {result['clean_best_dice']:.3f}"
    lines.append("| " + " | ".join([ROW_NAMES["clean"]] + [_cell(clean[v]) for v in victims] +
                                   [clean_means, "0.0", "inf", "1.000", "0"]) + " |")
    for entry in result["methods"]:
        if abs(entry["epsilon"] - epsilon) > 1e-9:
            continue
        stats = entry["stats"]
        lines.append("| " + " | ".join(
            [ROW_NAMES.get(entry["method"], entry["method"])] + [_cell(entry["victims"][v]) for v in victims] +
            [f"{entry['mean_dice']:.3f} / {entry['best_dice']:.3f}", visible_cell(stats), f"{stats['psnr_db']:.1f}",
             f"{stats['ssim']:.3f}", f"{stats['linf_over_noise']:.2f}"]) + " |")
    return "\n".join(lines)


def sweep_table(corpus: str, result: Dict) -> str:
    """Every (method, epsilon) with mean and best DSC against PSNR and the perturbation relative to noise and
    contrast."""
    header = ["method", "epsilon", "mean DSC", "best DSC", VISIBLE_HEADER, "PSNR dB", "SSIM", "L-inf / noise",
              "RMS / noise", "L-inf / ROI contrast", "surrogate loss protected / clean"]
    lines = [f"**{corpus}**: sweep (clean mean / best DSC {result['clean_mean_dice']:.3f} / "
             f"{result['clean_best_dice']:.3f})", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in sorted(result["methods"], key=lambda e: (e["method"], e["epsilon"])):
        stats = entry["stats"]
        gap = surrogate_gap(entry)
        lines.append("| " + " | ".join([
            ROW_NAMES.get(entry["method"], entry["method"]), f"{entry['epsilon_255']:g}/255",
            f"{entry['mean_dice']:.3f}", f"{entry['best_dice']:.3f}", visible_cell(stats), f"{stats['psnr_db']:.1f}",
            f"{stats['ssim']:.3f}", f"{stats['linf_over_noise']:.2f}", f"{stats['rms_over_noise']:.2f}",
            f"{stats['linf_over_contrast']:.2f}", gap]) + " |")
    return "\n".join(lines)


def surrogate_gap(entry: Dict) -> str:
    """The last logged surrogate loss on protected vs clean slices, "-" when the method logs none."""
    log = entry.get("generation_log") or {}
    history = log.get("surrogate_history")
    if history:
        return f"{history[-1]['loss_protected']:.3f} / {history[-1]['loss_clean']:.3f}"
    for training in log.get("surrogate_logs", []):
        protected, clean = training.get("final_loss_protected"), training.get("final_loss_clean")
        if protected is not None and clean is not None:
            return f"{protected:.3f} / {clean:.3f}"
    return "-"


def group_table(corpus: str, result: Dict) -> str:
    """DSC per test group (e.g. lesion contrast x size): rows clean and every method, best of seeds averaged over
    victims; empty when the corpus has no groups."""
    groups = list(result["clean_groups"])
    if not groups:
        return ""
    header = ["method", "epsilon"] + [f"{g} DSC" for g in groups]
    lines = [f"**{corpus}**: DSC per test group (best of seeds, mean over victims)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
             "| " + " | ".join([ROW_NAMES["clean"], "-"] + [f"{result['clean_groups'][g]['best']:.3f}" for g in groups])
             + " |"]
    for entry in result["methods"]:
        name = ROW_NAMES.get(entry["method"], entry["method"])
        lines.append("| " + " | ".join([name, f"{entry['epsilon_255']:g}/255"]
                                       + [f"{entry['groups'][g]['best']:.3f}" for g in groups]) + " |")
    return "\n".join(lines)


def verdict(corpus: str, by_level: Dict[str, Dict], epsilon: float, victims: List[str]) -> str:
    """One paragraph: is the corpus protected, by the criterion (a victim's best seed at most DEFEATED_DSC while its
    clean twin reaches CLEAN_DSC), at the main table's epsilon, level by level of the victims' augmentation."""
    parts = []
    for level, result in by_level.items():
        learnt = [v for v in victims if result["clean"][v]["best"] >= CLEAN_DSC]
        entries = [e for e in result["methods"] if abs(e["epsilon"] - epsilon) <= 1e-9]
        if not learnt:
            parts.append(f"at augmentation {level} no clean victim reached DSC {CLEAN_DSC:.2f}, so nothing can be "
                         "concluded")
            continue
        defeating = [(e, [v for v in learnt if e["victims"][v]["best"] <= DEFEATED_DSC]) for e in entries]
        protected = [(e, beaten) for e, beaten in defeating if beaten]
        if protected:
            parts.append(f"at augmentation {level} PROTECTED by " + "; ".join(
                f"{ROW_NAMES.get(e['method'], e['method'])} against {', '.join(beaten)} (best seed "
                f"{max(e['victims'][v]['best'] for v in beaten):.3f}, PSNR {e['stats']['psnr_db']:.1f} dB)"
                for e, beaten in protected))
            continue
        closest = min(entries, key=lambda e: min(e["victims"][v]["best"] for v in learnt), default=None)
        if closest is None:
            parts.append(f"at augmentation {level} NOT PROTECTED: no method ran at this epsilon")
            continue
        lowest = min(learnt, key=lambda v: closest["victims"][v]["best"])
        parts.append(f"at augmentation {level} NOT PROTECTED: the lowest best-seed DSC was "
                     f"{closest['victims'][lowest]['best']:.3f} "
                     f"({ROW_NAMES.get(closest['method'], closest['method'])}, {lowest}; clean twin "
                     f"{result['clean'][lowest]['best']:.3f})")
    return (f"**Verdict, {corpus}** (epsilon {epsilon * 255:g}/255; protected means a victim's best seed at most DSC "
            f"{DEFEATED_DSC:.2f} while its clean twin reaches {CLEAN_DSC:.2f}): " + "; ".join(parts) + ".")


def training_phrase(config: Dict) -> str:
    """How the victims trained: steps for this repository's victims, epochs of batches for nnU-Net's."""
    parts = []
    if any(victim not in NNUNET_VICTIMS for victim in config["victims"]):
        parts.append(f"victims trained {config['recipe']['steps']} steps")
    if any(victim in NNUNET_VICTIMS for victim in config["victims"]):
        parts.append(f"nnU-Net trained {config['nnunet']['epochs']} epochs of {config['nnunet']['iterations']} batches")
    return ", ".join(parts)


def markdown_report(results: Dict) -> str:
    """The whole Markdown report: per corpus and victim augmentation level, a main, a sweep and a group table."""
    config = results["config"]
    parts = [f"# UMedProtect evaluation\n\nDevice {results['environment']['device']}, "
             f"{results['seconds'] / 60:.1f} min; {training_phrase(config)}, seeds "
             f"{', '.join(str(s) for s in config['seeds'])}; DSC on the clean test split.\n"]
    for corpus, by_level in results["corpora"].items():
        for level, result in by_level["augmentation"].items():
            title = f"{corpus}, augmentation {level}"
            parts.append(main_table(title, {**result, "summary": by_level["summary"]}, config["epsilon"],
                                    list(config["victims"])))
            parts.append("")
            parts.append(sweep_table(title, result))
            parts.append("")
            groups = group_table(title, result)
            if groups:
                parts += [groups, ""]
    parts.append("## Verdict\n")
    for corpus, by_level in results["corpora"].items():
        parts += [verdict(corpus, by_level["augmentation"], config["epsilon"], list(config["victims"])), ""]
    return "\n".join(parts)
