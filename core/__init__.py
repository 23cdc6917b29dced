"""Core library of the optical-polymer discovery tool (no Streamlit imports here).

Modules (one concept each):

- ``polymer``      polymer-SMILES parsing/validation, canonical form, capped units, oligomers
- ``gaff2``        GAFF2 atom typing and parameter lookup (gaff2.dat from AmberTools)
- ``descriptors``  170-d force-field kernel mean embedding (SPACIER / RadonPy)
- ``optics``       Lorentz–Lorenz, Abbe number, empirical n_D–ν_D limit line, reference polymers
- ``surrogate``    Gaussian-process surrogate, one GP per objective
- ``acquisition``  Pareto front, 2-D hypervolume, exact EHVI, batch selection
- ``backtest``     replay of a campaign against an oracle table (CLI)
- ``pool``         candidate pool: n-gram language model, generation, default pool, imports
- ``simulation``   MD (LAMMPS) + QM (PySCF) oracle: polymer SMILES -> n_D, n_F, n_C, ν_D
- ``calibration``  labelled linear calibration of simulated n_D / ν_D to experiment (LOO errors)
- ``measurements`` measured / literature n_D, ν_D from a CSV as experimental observations
- ``store``        SQLite store, single source of truth
- ``cluster``      dask LocalCluster / dask-jobqueue profiles
- ``cluster_preview`` job-script preview in a subprocess (thread-safe), per-kind profile templates
- ``cluster_profiles`` named profiles from the owner's jobqueue.yaml; browser editing off by default
- ``runner``       runner process that executes approved calculations
- ``calc_process`` one calculation's pipeline in its own supervised, killable process group
- ``cycle``        one proposal: surrogate refit + EHVI batch over the pool (pending-aware)
- ``campaign``     headless campaign CLI (new/propose/approve/import-measurements/status/export)
- ``demo``         the demo campaign on the shipped pool and initial observations
- ``substructures`` named SMARTS library and enrichment statistics
- ``figures``, ``views``, ``structure_images``  Plotly figures, page numbers, RDKit pictures
- ``figure_export`` SVG / PDF / print-PNG export of a figure (kaleido + system Chromium)
"""
