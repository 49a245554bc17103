"""facetwin: an open digital twin of a humanoid face robot."""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# Offscreen rendering by default when there is no display (set MUJOCO_GL yourself to override).
if "MUJOCO_GL" not in _os.environ and not _os.environ.get("DISPLAY") and _sys.platform.startswith("linux"):
    _os.environ["MUJOCO_GL"] = "egl"
    _os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
