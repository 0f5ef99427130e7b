"""The three networks of UMed: the contour generator, the texture generator and the surrogate segmenter."""

from .cdc import CentralDifferenceConv2d
from .encoder_decoder import EncoderDecoder

__all__ = ["CentralDifferenceConv2d", "EncoderDecoder"]
