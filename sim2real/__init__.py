"""Sim-to-real: domain randomization, robot calibration, policy export."""
