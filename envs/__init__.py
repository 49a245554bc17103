"""facetwin.envs: Gymnasium environments on the face twin (registered on ``import facetwin``)."""

from facetwin.lazy import lazy_exports

_NAMES = {
    "FaceEnv": "base",
    "MirrorSelfModelEnv": "mirror_self_model",
    "LipSyncEnv": "lip_sync",
    "ClipData": "clips",
    "DomainParams": "domain",
    "DomainRandomization": "randomization",
    "RandomizationConfig": "randomization",
}
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
__all__ = sorted(_NAMES)
