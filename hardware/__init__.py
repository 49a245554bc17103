"""facetwin.hardware: the physical robot: servo buses, the calibration file, the safety layer, camera."""

from facetwin.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    "ServoBus:bus BusError:bus Calibration:calibration nominal_calibration:calibration SafeBus:safety "
    "SafetyConfig:safety_config PCA9685Bus:pca9685 DynamixelBus:serial_bus SimBus:sim_bus DynamixelEmulator:emulator "
    "FaceMeshCamera:camera",
)
