"""Optimisation: surrogate, acquisition, the one pure proposal step and the back-test.

See the map in :mod:`core`.
"""
