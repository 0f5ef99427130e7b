"""Load a corpus by name (the names the command line accepts)."""

from __future__ import annotations

from .corpus import Corpus


def load_corpus(name: str, quick: bool = False) -> Corpus:
    """mni-wm / mni-gm / mni-csf, nuclei, synth-organ / synth-lesion; quick shrinks the synthetic one."""
    if name.startswith("mni-"):
        from .mni import mni_corpus

        return mni_corpus(name[4:])
    if name == "nuclei":
        from .nuclei import nuclei_corpus

        return nuclei_corpus()
    if name.startswith("synth-"):
        from .synthetic import synthetic_corpus

        sizes = {"train_studies": 8, "test_studies": 3} if quick else {}
        return synthetic_corpus(name[6:], **sizes)
    raise ValueError(f"unknown corpus {name!r}")
