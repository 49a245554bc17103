"""facetwin.agents: self-model, lip-sync models, RL training, baselines and evaluation."""

from facetwin.lazy import lazy_exports

_NAMES = {
    "SelfModel": "self_model",
    "AudioToLips": "audio_to_lips",
    "LipSyncer": "lipsync",
    "LipSyncStream": "lipsync",
    "train": "rl",
    "load_checkpoint": "rl",
    "EvalReport": "evaluate",
    "lipsync_file": "perform",
}
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
__all__ = sorted(_NAMES)
