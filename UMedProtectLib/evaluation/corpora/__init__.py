"""The evaluation's corpora: generated (synthetic, faint, contrast), real (nuclei, MNI152, the head CT's faint
lesions) and an owner's own dataset, each split into training and test studies (`registry.py` loads one by name)."""
