"""The campaign layer: commands and CLI, the proposal cycle, measurements, the demo.

``python -m core.campaign`` is :mod:`core.campaign.commands`.  See the map in :mod:`core`.
"""
