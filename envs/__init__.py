"""facetwin.envs: Gymnasium environments on the face twin (registered on ``import facetwin``)."""

from facetwin.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    "FaceEnv:base MirrorSelfModelEnv:mirror_self_model LipSyncEnv:lip_sync ClipData:clips DomainParams:domain "
    "DomainRandomization:randomization RandomizationConfig:randomization",
)
