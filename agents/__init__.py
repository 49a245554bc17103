"""facetwin.agents: self-model, lip-sync models, RL training, baselines and evaluation."""

from facetwin.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    "SelfModel:self_model AudioToLips:audio_to_lips LipSyncer:lipsync LipSyncStream:lipsync train:rl "
    "load_checkpoint:rl_checkpoint EvalReport:evaluate lipsync_file:perform",
)
