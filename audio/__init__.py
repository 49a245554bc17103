"""facetwin.audio: loading, features, text to speech, singing, alignment, visemes and the training corpus."""

from .timeline import Phone, Timeline

__all__ = ["Phone", "Timeline"]
