"""facetwin.agents: self-model, lip-sync models, RL training, baselines and evaluation."""
