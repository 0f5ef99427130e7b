"""The embedded sample study (an MNI152 T1 slab with the lateral ventricles labelled) and more studies like it.

The committed files in sample_data/ were made by `python -m UMedProtectLib.files.sample` from the MNI ICBM 2009a
symmetric T1 template and its tissue maps that the `nilearn` package ships (licence in
sample_data/LICENSE-MNI152.txt). The demo reads only those files; nilearn is needed only to regenerate them
and, in the tests, for `template_study`, which derives further real studies (other slabs, other tissues).

Label 1 = the lateral ventricles: the cerebrospinal-fluid voxels (inside the brain mask, grey- and
white-matter probability both below 0.3) that form the large connected components lying well inside the
brain (the sulcal CSF and the cisterns reach the brain's surface and are left out).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from ..errors import InputError

SAMPLE_DIR = Path(__file__).resolve().parent / "sample_data"
SAMPLE_IMAGE = SAMPLE_DIR / "mni152_t1_slab.nrrd"
SAMPLE_LABEL = SAMPLE_DIR / "mni152_t1_slab_ventricles.nrrd"
# Axial template slices (1 mm, MNI z = index - 72) of the embedded slab: MNI z = +6 to +25 mm, the bodies
# of the lateral ventricles.
SAMPLE_SLICES = (78, 98)
TISSUES = ("ventricles", "csf", "grey_matter", "white_matter")
_SOURCE = "MNI ICBM 2009a nonlinear symmetric T1 template (nilearn), (c) 1993-2009 Louis Collins, MNI, McGill"


def sample_paths() -> Tuple[Path, Path]:
    """Paths of the embedded sample image and its label map (both .nrrd, gzip)."""
    for path in (SAMPLE_IMAGE, SAMPLE_LABEL):
        if not path.is_file():
            raise InputError(f"the sample file {str(path)!r} is missing; reinstall UMedProtectLib")
    return SAMPLE_IMAGE, SAMPLE_LABEL


@dataclass
class TemplateStudy:
    """A study cut from the MNI152 template: int16 image and uint8 label in (z, y, x), with LPS geometry."""

    image: np.ndarray
    label: np.ndarray
    spacing: Tuple[float, float, float]
    origin: Tuple[float, float, float]
    direction: Tuple[float, ...]
    description: str


def _templates() -> Dict[str, "object"]:
    """The nilearn template images (1 mm): T1, grey and white matter probabilities, brain mask."""
    try:
        from nilearn import datasets
    except ImportError:
        raise InputError("deriving template studies needs nilearn (pip install nilearn); the demo does not") from None
    return {"t1": datasets.load_mni152_template(resolution=1),
            "gm": datasets.load_mni152_gm_template(resolution=1),
            "wm": datasets.load_mni152_wm_template(resolution=1),
            "brain": datasets.load_mni152_brain_mask(resolution=1)}


def _ventricles(csf: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """The CSF components that stay at least 8 mm away from the brain's surface and hold over 1000 voxels."""
    from scipy import ndimage

    components, count = ndimage.label(csf)
    # Fill the mask's few interior holes first: eroding around them would mark inner CSF as surface CSF.
    solid = ndimage.binary_fill_holes(brain)
    shell = solid & ~ndimage.binary_erosion(solid, iterations=8)
    touching = set(np.unique(components[shell]))
    sizes = ndimage.sum_labels(csf, components, index=np.arange(1, count + 1))
    keep = [index for index in range(1, count + 1) if index not in touching and sizes[index - 1] > 1000]
    return np.isin(components, keep)


def _tissue_label(tissue: str, maps: Dict[str, np.ndarray]) -> np.ndarray:
    """Binary mask of one tissue on the whole template grid (i, j, k order)."""
    brain = maps["brain"] > 0.5
    csf = brain & (maps["gm"] < 0.3) & (maps["wm"] < 0.3)
    if tissue == "ventricles":
        return _ventricles(csf, brain)
    if tissue == "csf":
        return csf
    if tissue == "grey_matter":
        return brain & (maps["gm"] >= 0.5)
    if tissue == "white_matter":
        return brain & (maps["wm"] >= 0.5)
    raise InputError(f"tissue {tissue!r} is unknown; choose one of {', '.join(TISSUES)}")


def template_study(first: int = SAMPLE_SLICES[0], last: int = SAMPLE_SLICES[1], tissue: str = "ventricles",
                   margin: int = 4) -> TemplateStudy:
    """Cut template slices first..last-1 (axial, 1 mm), cropped in-plane to the head, with `tissue` as label 1."""
    images = _templates()
    maps = {name: np.asarray(image.get_fdata(), dtype=np.float32) for name, image in images.items()}
    if not 0 <= first < last <= maps["t1"].shape[2]:
        raise InputError(f"slices {first}..{last} are outside the template's 0..{maps['t1'].shape[2]}")
    label = _tissue_label(tissue, maps)[:, :, first:last]
    t1 = maps["t1"][:, :, first:last]
    head = np.argwhere((t1 > 0).any(axis=2))
    low = np.maximum(head.min(axis=0) - margin, 0)
    high = np.minimum(head.max(axis=0) + margin + 1, t1.shape[:2])
    crop = (slice(low[0], high[0]), slice(low[1], high[1]))
    # The template is stored as 8-bit steps scaled to [0, 1]: x255 gives back its exact integer values.
    image = np.round(t1[crop] * 255.0).astype(np.int16).transpose(2, 1, 0)
    label_zyx = label[crop].astype(np.uint8).transpose(2, 1, 0)
    # NIfTI affines map voxels to RAS; ITK geometry is LPS: flip x and y.
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ images["t1"].affine
    origin = affine @ np.array([low[0], low[1], first, 1.0])
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = affine[:3, :3] / spacing
    description = f"MNI152 T1 slices {first}-{last - 1} (MNI z {first - 72}..{last - 73} mm), label 1 = {tissue}"
    return TemplateStudy(image, label_zyx, tuple(float(s) for s in spacing), tuple(float(v) for v in origin[:3]),
                         tuple(float(v) for v in direction.ravel()), description)


def write_template_study(study: TemplateStudy, image_path, label_path, overwrite: bool = True) -> None:
    """Write a template study as image and label files (any supported format), both or neither."""
    import SimpleITK as sitk

    from .image_io import from_sitk, write_outputs

    references = []
    for array in (study.image, study.label):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(study.spacing)
        image.SetOrigin(study.origin)
        image.SetDirection(study.direction)
        image.SetMetaData("UMed_sample_source", _SOURCE)
        image.SetMetaData("UMed_sample_description", study.description)
        references.append(from_sitk(image))
    write_outputs([(study.image, references[0], image_path), (study.label, references[1], label_path)],
                  overwrite=overwrite)


def make_sample(folder: Optional[Path] = None) -> Tuple[Path, Path]:
    """Regenerate the embedded sample files from nilearn (what `python -m UMedProtectLib.files.sample` runs)."""
    folder = Path(folder) if folder is not None else SAMPLE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    image_path, label_path = folder / SAMPLE_IMAGE.name, folder / SAMPLE_LABEL.name
    write_template_study(template_study(*SAMPLE_SLICES, tissue="ventricles"), image_path, label_path)
    return image_path, label_path


if __name__ == "__main__":
    for written in make_sample():
        print(f"wrote {written} ({written.stat().st_size / 1024:.0f} KiB)")
