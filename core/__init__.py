"""Core library of the optical-polymer discovery tool (no Streamlit imports here).

The folder tree is the map: one package per layer, one concept per module.  Read it top to
bottom as the closed loop runs (README, "Architecture").  ``tests/test_layout.py`` checks that
every module under ``core/`` is named here.

Vocabulary and errors (top level)
- ``config``            the campaign vocabulary: CalcState, BatchState, CycleState, RunnerState,
                        Strategy, ClusterKind, preset names, wavelengths, defaults, CampaignConfig
- ``errors``            OptipolyError and its domains (input, store, calculation, cluster)
- ``atomic_io``         atomic file writes
- ``runner``, ``backtest``  entry points only, for ``python -m core.runner`` and
                        ``python -m core.backtest``; the code is in ``execution`` and ``optimize``

``chem``: chemistry and physics of one polymer
- ``chem.polymer``      polymer-SMILES parsing/validation, canonical form, capped units, oligomers
- ``chem.gaff2``        GAFF2 atom typing and parameter lookup (gaff2.dat from AmberTools)
- ``chem.descriptors``  170-d force-field kernel mean embedding (SPACIER / RadonPy)
- ``chem.substructures``  named SMARTS library and enrichment statistics
- ``chem.feasibility``  synthetic accessibility (SA score) and unfit-motif flags
- ``chem.optics``       Lorentz–Lorenz, Abbe number, empirical n_D–ν_D limit line, references
- ``chem.calibration``  labelled linear calibration of simulated n_D / ν_D to experiment
- ``chem.structure_images``  RDKit pictures of polymers (hover images, SVG data URIs), minified
                            to ~3.4 kB each (whole pool ~34 MB)

``pool``: the candidates
- ``pool``              candidate pool: generation, default pool, imports, ``python -m core.pool``
- ``pool.ngram``        n-gram polymer-SMILES language model the generator samples

``optimize``: from observations to a proposed batch
- ``optimize.surrogate``    Gaussian-process surrogate, one GP per objective
- ``optimize.acquisition``  Pareto front, 2-D hypervolume, exact EHVI, batch selection
- ``optimize.proposal``     propose(observations, pool, config, pending) -> Proposal: the one,
                            pure proposal step the campaign and the back-test share
- ``optimize.backtest``     replay of a campaign against an oracle table (CLI)
- ``optimize.model_check``  is the surrogate any good: predicted vs simulated values per
                            cycle (bias, MAE, RMSE, fraction within 1σ / 2σ)
- ``optimize.cost_estimate`` CPU cost of simulating a candidate, per step, and whether it can
                            be simulated at all (the pre-check before it is proposed)

``simulation``: the oracle, polymer SMILES -> n_D, n_F, n_C, ν_D (MD with LAMMPS, QM with PySCF)
- ``simulation.pipeline``   the steps in order, resumable in a work directory
- ``simulation.presets``    smoke / quick / standard settings, one frozen dataclass
- ``simulation.build``      step 1: CH3-terminated atactic chains with 3-D coordinates
- ``simulation.ring``       chains closed into rings (option ``chain_topology``, off by default)
- ``simulation.forcefield``  step 2: GAFF2 types and parameters, AM1-BCC charges
- ``simulation.openff_sage``  the second force field, OpenFF Sage
- ``simulation.lammps_data``  LAMMPS data file of the parametrised chains
- ``simulation.cell``       step 3: packmol box at low density
- ``simulation.md``         step 4: LAMMPS equilibration and NPT production -> density
- ``simulation.dilatometry``  Tg and the melt-line density from a cooling ladder
- ``simulation.packing``    packing-coefficient density estimate (cross-check)
- ``simulation.qm``         step 5: frequency-dependent polarisability of the repeat unit
- ``simulation.response``   α(ω) by linear response on PySCF primitives
- ``simulation.env``        external programs of the pipeline, work-dir lock
- ``simulation.errors``     one error class per failure a chemist tells apart

``store``: SQLite, the single source of truth
- ``store``                 :class:`Store`, composed of the modules below
- ``store.db``              connections, transactions, shared helpers
- ``store.migrations``      the schema, one SQL script per version
- ``store.errors``          StoreError and its subclasses
- ``store.campaigns``       campaigns and the audit log
- ``store.observations``    observed objective values
- ``store.pool``            pool additions, rejections, predictions, descriptor cache
- ``store.batches``         cycles and batches (propose -> approve -> finish)
- ``store.calculations``    the calculation state machine
- ``store.runners``         runner heartbeats
- ``store.snapshot``        every row of one campaign read as stored and written back under
                            new ids in one transaction (what a bundle carries)

``execution``: running approved calculations
- ``execution.runner``      the scheduler loop (store, executor and campaign hooks injected)
- ``execution.task``        the worker side: CalculationSpec and the dask task of one calculation
- ``execution.calc_process``  one calculation's pipeline in its own supervised process group
- ``execution.cluster``     dask LocalCluster / dask-jobqueue profiles
- ``execution.cluster_preview``  job-script preview in a subprocess, per-kind templates
- ``execution.cluster_profiles``  named profiles from the owner's jobqueue.yaml

``campaign``: the closed loop around a store
- ``campaign.commands``     campaign operations and the headless CLI ``python -m core.campaign``
                            (new/propose/approve/import-measurements/status/export)
- ``campaign.cycle``        one proposal: gathers the inputs, calls ``optimize.proposal.propose``,
                            persists the batch; the runner's hooks (``RUNNER_HOOKS``)
- ``campaign.runner_cli``   ``python -m core.runner``: the runner wired to the campaign's hooks
- ``campaign.fidelity``     which oracle made an observation's numbers (preset, force field,
                            protocol); the surrogate and the front use the campaign's own only
- ``campaign.measurements``  measured / literature n_D, ν_D from a CSV as observations
- ``campaign.demo``         the demo campaign on the shipped pool and initial observations;
                            the shipped finished campaigns (``assets/campaigns/*.json``) at start
- ``campaign.report``       results per cycle (evaluated, beyond the line, hypervolume, best n_D
                            at ν_D ≥ 40, wall time) and S / sulfonyl fractions beyond the line
- ``campaign.bundle``       one JSON file per campaign (``bundle`` / ``load-bundle``): ship a
                            finished campaign, open it without computing anything

``ui``: presentation, no Streamlit (the pages are in ``pages/``)
- ``ui.views``              page numbers and texts
- ``ui.figures``            Plotly figures
- ``ui.figure_export``      SVG / PDF / print-PNG export of a figure (kaleido + system Chromium)
"""
