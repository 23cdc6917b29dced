"""Core library of the optical-polymer discovery tool (no Streamlit imports here).

Modules (one concept each), by layer:

Vocabulary and errors
- ``config``       the campaign vocabulary: CalcState, BatchState, CycleState, RunnerState,
                   Strategy, ClusterKind, preset names, wavelengths, defaults, CampaignConfig
- ``errors``       OptipolyError and its domains (input, store, calculation, cluster)
- ``atomic_io``    atomic file writes

Chemistry and physics
- ``polymer``      polymer-SMILES parsing/validation, canonical form, capped units, oligomers
- ``gaff2``        GAFF2 atom typing and parameter lookup (gaff2.dat from AmberTools)
- ``descriptors``  170-d force-field kernel mean embedding (SPACIER / RadonPy)
- ``substructures`` named SMARTS library and enrichment statistics
- ``feasibility``  synthetic accessibility (SA score) and unfit-motif flags
- ``optics``       Lorentz–Lorenz, Abbe number, empirical n_D–ν_D limit line, reference polymers
- ``calibration``  labelled linear calibration of simulated n_D / ν_D to experiment (LOO errors)
- ``simulation``   MD (LAMMPS) + QM (PySCF) oracle: polymer SMILES -> n_D, n_F, n_C, ν_D

Candidates
- ``ngram``        n-gram polymer-SMILES language model
- ``pool``         candidate pool: generation, default pool, imports

Optimisation
- ``surrogate``    Gaussian-process surrogate, one GP per objective
- ``acquisition``  Pareto front, 2-D hypervolume, exact EHVI, batch selection
- ``proposal``     propose(observations, pool, config, pending) -> Proposal: the one, pure
                   proposal step the campaign and the back-test share
- ``backtest``     replay of a campaign against an oracle table (CLI)

Persistence
- ``store``        SQLite store, single source of truth (package: db, migrations, errors, one
                   module per aggregate: campaigns, observations, pool, batches, calculations,
                   runners)

Execution
- ``cluster``      dask LocalCluster / dask-jobqueue profiles
- ``cluster_preview`` job-script preview in a subprocess (thread-safe), per-kind profile templates
- ``cluster_profiles`` named profiles from the owner's jobqueue.yaml; browser editing off by default
- ``task``         the worker side: CalculationSpec and the dask task of one calculation
- ``calc_process`` one calculation's pipeline in its own supervised, killable process group
- ``runner``       the scheduler loop that executes approved calculations (store, executor and
                   campaign hooks injected)

Campaign
- ``cycle``        one proposal: gathers the inputs, calls ``proposal.propose``, persists the batch
- ``campaign``     headless campaign CLI (new/propose/approve/import-measurements/status/export)
- ``runner_cli``   ``python -m core.runner``: the runner wired to the campaign's hooks
- ``measurements`` measured / literature n_D, ν_D from a CSV as experimental observations
- ``demo``         the demo campaign on the shipped pool and initial observations

Presentation (no Streamlit)
- ``figures``, ``views``, ``structure_images``  Plotly figures, page numbers, RDKit pictures
- ``figure_export`` SVG / PDF / print-PNG export of a figure (kaleido + system Chromium)
"""
