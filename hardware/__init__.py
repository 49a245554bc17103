"""facetwin.hardware: the physical robot: servo buses, the calibration file, the safety layer, camera."""

from facetwin.lazy import lazy_exports

_NAMES = {
    "ServoBus": "bus",
    "BusError": "bus",
    "Calibration": "calibration",
    "nominal_calibration": "calibration",
    "SafeBus": "safety",
    "SafetyConfig": "safety",
    "PCA9685Bus": "pca9685",
    "DynamixelBus": "serial_bus",
    "SimBus": "sim_bus",
    "DynamixelEmulator": "emulator",
    "FaceMeshCamera": "camera",
}
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
__all__ = sorted(_NAMES)
