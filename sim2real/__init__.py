"""facetwin.sim2real: the workflows that join the layers: robot calibration, policy export, deployment."""

from facetwin.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    "export_policy:export load_exported:export ExportedPolicy:export open_buses:deploy",
)
