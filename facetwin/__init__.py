"""facetwin: an open digital twin of a humanoid face robot."""

__version__ = "0.1.0"

# Rendering picks an offscreen GL backend itself when there is no display (facetwin.sim.render.ensure_offscreen_gl),
# whatever was imported first: importing facetwin changes no environment variable.

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
