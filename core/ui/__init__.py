"""Presentation without Streamlit: page numbers, Plotly figures, figure export.

See the map in :mod:`core`.
"""
