"""The Stable-Baselines3 callbacks of a :mod:`facetwin.agents.rl` training run: a tqdm progress bar, the
end-of-episode landmark error in TensorBoard, periodic checkpoints."""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np


def _callback_classes():
    """The callback classes (defined on first use: importing this module does not import SB3)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class TqdmProgress(BaseCallback):
        """A tqdm bar over the total step target (continues from the step count when resuming)."""

        def __init__(self, total: int):
            super().__init__()
            self.total = total
            self.bar = None

        def _on_training_start(self) -> None:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=self.total,
                initial=self.num_timesteps,
                unit="step",
                dynamic_ncols=True,
                smoothing=0.05,
                mininterval=0.5 if sys.stderr.isatty() else 30.0,  # a log file gets a line every 30 s
            )

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            return True

        def _on_rollout_end(self) -> None:
            err = [ep["error_mm"] for ep in self.model.ep_info_buffer if "error_mm" in ep]
            if err:
                self.bar.set_postfix_str(f"final error {np.mean(err):.2f} mm", refresh=False)

        def _on_training_end(self) -> None:
            if self.bar is not None:
                self.bar.n = self.num_timesteps
                self.bar.close()

    class ErrorLogger(BaseCallback):
        """Logs the mean end-of-episode landmark error of recent training episodes (rollout/ep_final_error_mm)."""

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            err = [ep["error_mm"] for ep in self.model.ep_info_buffer if "error_mm" in ep]
            if err:
                self.logger.record("rollout/ep_final_error_mm", float(np.mean(err)))

    class PeriodicCheckpoint(BaseCallback):
        """Checkpoint every ``every`` steps at the start of a rollout, i.e. after the previous update: the saved
        step count matches the data the saved policy has learned from (nothing half-collected is counted)."""

        def __init__(self, save: Callable[[], None], every: int):
            super().__init__()
            self.save = save
            self.every = every
            self.last = 0

        def _on_training_start(self) -> None:
            self.last = self.num_timesteps

        def _on_rollout_start(self) -> None:
            if self.every > 0 and self.num_timesteps - self.last >= self.every:
                self.save()
                self.last = self.num_timesteps

        def _on_step(self) -> bool:
            return True

    return TqdmProgress, ErrorLogger, PeriodicCheckpoint


def training_callbacks(save: Callable[[], None], checkpoint_every: int, progress_total: int | None = None) -> list:
    """The callbacks of one ``model.learn``: a progress bar up to ``progress_total`` steps (None: no bar), the
    error logger, and ``save()`` every ``checkpoint_every`` steps (0: never)."""
    TqdmProgress, ErrorLogger, PeriodicCheckpoint = _callback_classes()
    callbacks = [ErrorLogger(), PeriodicCheckpoint(save, checkpoint_every)]
    if progress_total is not None:
        callbacks.insert(0, TqdmProgress(progress_total))
    return callbacks


__all__ = ["training_callbacks"]
