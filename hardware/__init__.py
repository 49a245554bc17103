"""The physical robot: servo buses, the safety layer, camera, deployment."""
