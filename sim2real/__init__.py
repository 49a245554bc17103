"""facetwin.sim2real: the workflows that join the layers: robot calibration, policy export, deployment."""

from facetwin.lazy import lazy_exports

_NAMES = {
    "export_policy": "export",
    "load_exported": "export",
    "ExportedPolicy": "export",
    "open_buses": "deploy",
}
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
__all__ = sorted(_NAMES)
