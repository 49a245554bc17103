"""facetwin.sim: the face twin (model, actuators, landmarks, rendering).

>>> from facetwin.sim import FaceModel
>>> face = FaceModel.load()
"""

from .actuators import N_ACTUATORS, actuator_names, load_actuators, rest_controls
from .builder import CONTROL_HZ, VARIANTS, build_mjcf
from .landmarks import landmark_ids, load_schema, mouth_measures
from .model import FaceModel

__all__ = [
    "CONTROL_HZ",
    "FaceModel",
    "N_ACTUATORS",
    "VARIANTS",
    "actuator_names",
    "build_mjcf",
    "landmark_ids",
    "load_actuators",
    "load_schema",
    "mouth_measures",
    "rest_controls",
]
