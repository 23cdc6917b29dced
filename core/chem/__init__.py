"""Chemistry and physics of one polymer: SMILES, force-field typing, descriptors, optics.

See the map in :mod:`core`.
"""
