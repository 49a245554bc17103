"""facetwin: an open digital twin of a humanoid face robot."""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# Offscreen rendering by default when there is no display (set MUJOCO_GL yourself to override).
if "MUJOCO_GL" not in _os.environ and not _os.environ.get("DISPLAY") and _sys.platform.startswith("linux"):
    _os.environ["MUJOCO_GL"] = "egl"
    _os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

# Gymnasium environments (entry points are imported lazily, on gymnasium.make).
ENV_IDS = ("facetwin/MirrorSelfModel-v0", "facetwin/LipSync-v0")


def _register_envs() -> None:
    try:
        import gymnasium
    except ImportError:  # gymnasium is a dependency; keep `import facetwin` working without it anyway
        return
    specs = {
        "facetwin/MirrorSelfModel-v0": dict(
            entry_point="facetwin.envs.mirror_self_model:MirrorSelfModelEnv",
            max_episode_steps=60,  # 2 s at 30 Hz (TimeLimit)
            kwargs={"max_episode_steps": None},
        ),
        # an episode is one clip: the env truncates at the clip's last frame itself
        "facetwin/LipSync-v0": dict(entry_point="facetwin.envs.lip_sync:LipSyncEnv"),
    }
    for env_id, spec in specs.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, **spec)


_register_envs()
