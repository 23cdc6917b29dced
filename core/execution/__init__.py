"""Execution of approved calculations: the runner loop, the worker-side task, clusters.

See the map in :mod:`core`.
"""
