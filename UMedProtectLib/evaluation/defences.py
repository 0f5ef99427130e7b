"""The attacker's preprocessing: filters an unauthorised trainer can run on every image for free, before training.

Each defence is applied alike to the clean and the protected training split and to the test split, so the clean
twin sees exactly what the victim sees. All filters come from the field's libraries (SciPy, scikit-image, Pillow),
written here for the evaluation alone: nothing a design is fitted through is used.

Images are slices (N, H, W) in [0, 1] (the corpora's robust range); per-slice filters run on each axial slice.
The one mask-aware defence uses the shared training labels, as an attacker who knows where the perturbation lives
would: it re-synthesises the ROI and a band around it (blurred, with fresh noise of the slice's own level outside
the band), so a texture placed there is gone while the lesion's mean contrast stays. Test images have no labels at
attack time, so that defence leaves them as they are.
"""

from __future__ import annotations

import io
from typing import Callable, Dict, Optional

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import exposure, filters, morphology, restoration, transform, util

# name -> (what it does, for the tables)
DESCRIPTIONS: Dict[str, str] = {
    "none": "no preprocessing",
    "blur-0.5": "Gaussian blur, sigma 0.5 px (scikit-image)",
    "blur-1": "Gaussian blur, sigma 1 px (scikit-image)",
    "median-3": "median filter 3x3 (SciPy)",
    "nl-means": "non-local means, h = 0.8 x the estimated noise (scikit-image)",
    "noise": "added Gaussian noise of std 0.02 (scikit-image)",
    "quantise-8bit": "8-bit export of the robust-range window and back",
    "jpeg-90": "8-bit export, JPEG quality 90 and back (Pillow)",
    "jpeg-50": "8-bit export, JPEG quality 50 and back (Pillow)",
    "lowres-0.5": "down-sampled x0.5 (anti-aliased) and back up, linear (scikit-image)",
    "mask-resynth": "ROI + 3 px band of training images blurred (sigma 1.5) with fresh noise of the slice's level",
}
NAMES = tuple(DESCRIPTIONS)
ADDED_NOISE_STD = 0.02
MASK_BAND = 3


def _per_slice(function: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    return lambda images: np.stack([function(s) for s in images]).astype(np.float32)


def _to_8bit(image: np.ndarray) -> np.ndarray:
    """The slice as an 8-bit export of its robust-range window [0, 1] (what a PNG or JPEG export of a study holds)."""
    return util.img_as_ubyte(exposure.rescale_intensity(image, in_range=(0.0, 1.0), out_range=(0.0, 1.0)))


def _jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    def round_trip(image: np.ndarray) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(_to_8bit(image)).save(buffer, format="JPEG", quality=quality)
        return util.img_as_float32(np.asarray(Image.open(io.BytesIO(buffer.getvalue()))))

    return round_trip


def _nl_means(image: np.ndarray) -> np.ndarray:
    sigma = float(restoration.estimate_sigma(image))
    return restoration.denoise_nl_means(image, h=0.8 * sigma, sigma=sigma, patch_size=5, patch_distance=6,
                                        fast_mode=True)


def _lowres(image: np.ndarray) -> np.ndarray:
    small = transform.rescale(image, 0.5, order=1, anti_aliasing=True)
    return transform.resize(small, image.shape, order=1)


def _mask_resynth(images: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = images.astype(np.float32).copy()
    for index, (image, label) in enumerate(zip(images, labels)):
        region = ndimage.binary_dilation(label > 0, structure=morphology.disk(MASK_BAND))
        if not region.any():
            continue
        outside = ~ndimage.binary_dilation(region, structure=morphology.disk(MASK_BAND))
        # The slice's own noise level, from the high-pass residual away from the region.
        residual = image - filters.gaussian(image, sigma=1.5)
        level = float(residual[outside].std()) if outside.sum() > 16 else 0.0
        smooth = filters.gaussian(image, sigma=1.5)
        out[index][region] = (smooth + level * rng.standard_normal(image.shape))[region]
    return np.clip(out, 0.0, 1.0)


def apply_defence(name: str, images: np.ndarray, labels: Optional[np.ndarray] = None, seed: int = 0) -> np.ndarray:
    """`images` (N, H, W) in [0, 1] after the attacker's preprocessing `name`; `labels` are the shared labels of
    these images (None for test images, which the mask-aware defence then leaves unchanged)."""
    if name not in DESCRIPTIONS:
        raise ValueError(f"unknown defence {name!r}; choose from {', '.join(NAMES)}")
    images = images.astype(np.float32)
    if name == "none":
        return images
    if name == "mask-resynth":
        return images if labels is None else _mask_resynth(images, labels, seed)
    if name == "noise":
        return util.random_noise(images, mode="gaussian", var=ADDED_NOISE_STD ** 2, rng=seed,
                                 clip=True).astype(np.float32)
    if name == "quantise-8bit":
        return util.img_as_float32(_to_8bit(images))
    if name.startswith("blur-"):
        sigma = float(name[len("blur-"):])
        return filters.gaussian(images, sigma=(0, sigma, sigma), preserve_range=True).astype(np.float32)
    if name == "median-3":
        return ndimage.median_filter(images, size=(1, 3, 3), mode="nearest")
    per_slice = {"nl-means": _nl_means, "jpeg-90": _jpeg(90), "jpeg-50": _jpeg(50), "lowres-0.5": _lowres}
    return np.clip(_per_slice(per_slice[name])(images), 0.0, 1.0)
