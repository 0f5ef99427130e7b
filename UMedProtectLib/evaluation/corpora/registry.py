"""Load a corpus by name (the names the command line accepts)."""

from __future__ import annotations

from .corpus import Corpus


def load_corpus(name: str, quick: bool = False, epsilon: float = 4 / 255) -> Corpus:
    """mni-wm / mni-gm / mni-csf, nuclei, nuclei-3d, synth-organ / synth-lesion, synth-contrast (lesion contrasts
    at multiples of `epsilon`), synth-faint (every lesion 2.5 x `epsilon`), ct-faint (lesions of 2.5 x `epsilon` in
    a real head CT); quick shrinks the generated ones."""
    if name.startswith("mni-"):
        from .mni import mni_corpus

        return mni_corpus(name[4:])
    if name == "nuclei":
        from .nuclei import nuclei_corpus

        return nuclei_corpus()
    if name == "nuclei-3d":
        from .nuclei import nuclei_3d_corpus

        return nuclei_3d_corpus()
    if name == "synth-contrast":
        from .contrast import contrast_corpus

        return contrast_corpus(epsilon, studies_per_group=(1, 1) if quick else (4, 2))
    if name == "synth-faint":
        from .faint import faint_corpus

        return faint_corpus(epsilon=epsilon)
    if name == "ct-faint":
        from .ct_lesions import ct_faint_corpus

        return ct_faint_corpus(epsilon=epsilon)
    if name.startswith("synth-"):
        from .synthetic import synthetic_corpus

        sizes = {"train_studies": 8, "test_studies": 3} if quick else {}
        return synthetic_corpus(name[6:], **sizes)
    raise ValueError(f"unknown corpus {name!r}")
