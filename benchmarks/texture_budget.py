"""At which budget the quiet designs leave the ROI's texture inside the report's silent band.

The figures are quoted in docs/results/attacker-tools.md.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/texture_budget.py [--studies 6] [--out FILE]
(default docs/results/texture-budget.json).
Every design is run through the engine's protect() at each budget on the first training studies of `synth-faint`
(white noise of 4/255) and `ct-faint` (a real head CT's noise, 0.98 x 4/255 in the soft-tissue window; skipped
without Debian's invesalius-examples); the JSON holds each study's ROI and band texture ratios and PSNR, and their
means. Fitted designs use the fast preset; quiet shares quiet-rim's ROI part (nothing fitted), so its ROI ratio is
the same.
"""

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from UMedProtectLib import protect
from UMedProtectLib.evaluation.corpora.registry import load_corpus
from UMedProtectLib.settings import ProtectSettings
from UMedProtectLib.method.measures.texture_change import VISIBLE_TEXTURE_FACTOR

OUT = Path(__file__).resolve().parents[1] / "docs" / "results" / "texture-budget.json"
BUDGETS_255 = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)


def corpus_rows(name: str, designs, studies: int) -> list:
    """One row per (design, budget): mean and per-study texture ratios and PSNR over the corpus's first studies."""
    try:
        corpus = load_corpus(name)
    except Exception as error:  # ct-faint needs a Debian package; say so in the data instead of failing the rest
        print(f"{name}: skipped ({error})")
        return []
    rows = []
    for design in designs:
        for budget in BUDGETS_255:
            settings = ProtectSettings(epsilon=budget / 255, design=design, preset="fast", seed=0)
            per_study = []
            for study in corpus.train[:studies]:
                report = protect(study.image, study.label, settings=settings).report
                per_study.append({"study": study.name, **report["texture"], "psnr_db": report["psnr_db"]})
            means = {key: float(np.nanmean([s[key] for s in per_study]))
                     for key in ("roi_texture_ratio", "band_texture_ratio", "psnr_db")}
            rows.append({"corpus": name, "design": design, "epsilon_255": budget, **means, "studies": per_study})
            print(f"{name} {design} {budget:g}/255: ROI x{means['roi_texture_ratio']:.2f}, "
                  f"band x{means['band_texture_ratio']:.2f}, {means['psnr_db']:.1f} dB", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=6)
    parser.add_argument("--designs", default="quiet-rim")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    start = time.monotonic()
    rows = [row for name in ("synth-faint", "ct-faint") for row in corpus_rows(name, args.designs.split(","),
                                                                            args.studies)]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    data = {"command": "OMP_NUM_THREADS=1 python benchmarks/texture_budget.py "
                       f"--studies {args.studies} --designs {args.designs}",
            "silent_band": [1 / VISIBLE_TEXTURE_FACTOR, VISIBLE_TEXTURE_FACTOR], "corpus_noise_255": 4.0,
            "commit": commit, "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
            "date": time.strftime("%Y-%m-%d"), "seconds": round(time.monotonic() - start), "rows": rows}
    temporary = args.out.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    temporary.replace(args.out)


if __name__ == "__main__":
    main()
