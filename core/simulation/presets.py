"""Simulation presets: one frozen dataclass, three named instances, one code path.

- ``smoke``    end to end in well under a minute on 2 cores (CI): tiny cell, a few hundred steps,
               minimal basis. Numbers are *not* meaningful, only the plumbing is exercised.
- ``quick``    minutes on 2 cores for repeat units up to ~40 atoms (demo / laptop default): a
               ~600-atom cell, a time-compressed Larsen-style schedule, CAM-B3LYP/6-31+G*
               (density-fitted) response α(ω) of the capped repeat unit.
- ``standard`` RadonPy's protocol (Hayashi et al., npj Comput. Mater. 8, 222 (2022)): 10 chains of
               ~1000 atoms packed at 0.05 g/cm³, 1 fs, PPPM 1e-6, the 21-step compression/
               decompression of Larsen et al. (Macromolecules 44, 6944 (2011)) with T_max 600 K and
               P_max 50,000 atm (~1.56 ns), then 5 ns NPT at 300 K / 1 atm with density averaged
               over the last 2 ns, up to 4 extensions if not converged.

Units: temperature K, pressure atm, time fs/ps, lengths Å, density g/cm³.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace


__all__ = ["Stage", "Preset", "larsen_21_step", "get_preset", "PRESETS"]


@dataclass(frozen=True)
class Stage:
    """One MD stage: ensemble ``nvt``/``npt``, temperature ramp t_start→t_end (K), pressure (atm)."""

    ensemble: str
    t_start: float
    t_end: float
    p_atm: float
    time_ps: float
    name: str = ""


def larsen_21_step(*, t_max: float = 600.0, t_final: float = 300.0, p_max: float = 50000.0,
                   scale: float = 1.0) -> tuple[Stage, ...]:
    """The 21-step compression/decompression equilibration of Larsen et al. (2011) as in RadonPy.

    Stage pressures are 0.02, 0.6, 1, 0.5, 0.1, 0.01 × P_max and finally 1 atm; NVT stages alternate
    between T_max and T_final.  ``scale`` multiplies every duration (1.0 = 1,560 ps in total).
    """
    nvt, npt = "nvt", "npt"
    rows = [
        (nvt, t_max, 0, 50), (nvt, t_final, 0, 50), (npt, t_final, 0.02, 50),
        (nvt, t_max, 0, 50), (nvt, t_final, 0, 100), (npt, t_final, 0.6, 50),
        (nvt, t_max, 0, 50), (nvt, t_final, 0, 100), (npt, t_final, 1.0, 50),
        (nvt, t_max, 0, 50), (nvt, t_final, 0, 100), (npt, t_final, 0.5, 5),
        (nvt, t_max, 0, 5), (nvt, t_final, 0, 10), (npt, t_final, 0.1, 5),
        (nvt, t_max, 0, 5), (nvt, t_final, 0, 10), (npt, t_final, 0.01, 5),
        (nvt, t_max, 0, 5), (nvt, t_final, 0, 10), (npt, t_final, None, 800),
    ]
    out = []
    for i, (ens, t, pf, ps) in enumerate(rows, 1):
        p = 1.0 if pf is None else pf * p_max
        out.append(Stage(ens, t, t, p if ens == npt else 0.0, ps * scale, f"larsen{i}"))
    return tuple(out)


FORCEFIELDS = ("gaff2", "sage")
DENSITY_METHODS = ("direct", "melt_line")
CHAIN_TOPOLOGIES = ("linear", "ring")


@dataclass(frozen=True)
class Preset:
    """All knobs of one simulation protocol (see module docstring for the three presets)."""

    name: str
    # --- build ---
    chain_atoms: int = 150            # target atoms per chain (DP chosen from repeat-unit size)
    n_chains: int = 4
    min_dp: int = 3
    chain_topology: str = "linear"    # "linear": CH3-capped chains; "ring": each chain closed
                                      # into a ring, no chain ends (core.simulation.ring; measured
                                      # no denser, docs/density_benchmark.md: off in every preset)
    # --- force field / charges ---
    forcefield: str = "gaff2"         # "gaff2" (antechamber/parmchk2/tleap) or "sage" (OpenFF
                                      # Sage 2.x valence + LJ); AM1-BCC charges in both
    charge_oligomer_n: int = 3        # AM1-BCC on an H-capped n-mer, charges copied to the chains
    sqm_maxcyc_sulfur: int = 200      # limited sqm optimisation for S-containing units (DESIGN)
    # --- cell ---
    pack_density: float = 0.05        # g/cm³ for the initial packmol box
    pack_tolerance: float = 2.0       # Å minimum distance between atoms of different molecules
    # --- MD force-field settings ---
    timestep_fs: float = 1.0
    shake: bool = True
    lj_inner: float = 8.0             # CHARMM switching start (Å); unused with lj_tail
    lj_outer: float = 12.0            # LJ cutoff (Å)
    lj_tail: bool = False             # plain LJ cutoff + analytic tail correction (Amber/GAFF's
                                      # convention) instead of RadonPy's CHARMM switching
    lj_epsilon_scale: float = 1.0     # every LJ well depth ε × this (1 = the force field as
                                      # published); a refit of the cohesion against polymer
                                      # densities (benchmarks/bench_density.py)
    pppm_accuracy: float = 1e-6
    t_damp_fs: float = 100.0
    p_damp_fs: float = 1000.0
    # --- MD schedule ---
    minimise_steps: int = 5000
    heat_time_ps: float = 20.0        # NVT 300 K -> t_max at packing density (soft relax)
    t_max: float = 700.0
    compress_stages: tuple[Stage, ...] = ()   # compression to a dense liquid
    equil_stages: tuple[Stage, ...] = ()      # e.g. Larsen 21-step
    production_ps: float = 5000.0
    production_average_ps: float = 2000.0     # density = mean of the last ... ps
    thermo_every_ps: float = 1.0
    max_extensions: int = 4
    drift_tolerance: float = 0.01             # |Δρ|/ρ over the averaging window for "converged"
    # --- cooling ladder and melt-line density (core.simulation.dilatometry) ---
    ladder_temps: tuple[float, ...] = ()      # NPT 1 atm temperatures (K), hottest first; run
                                              # as its own LAMMPS job after the production
    ladder_heat_ps: float = 20.0              # NPT heating 300 K → ladder_temps[0] first
    ladder_equil_ps: float = 10.0             # per temperature: equilibration (discarded) ...
    ladder_sample_ps: float = 10.0            # ... then sampling of the specific volume
    density_method: str = "direct"            # "direct": 300 K production mean (fast-quench
                                              # glass); "melt_line": equilibrium melt line
                                              # extrapolated to Tg, Simha–Boyer glass to 300 K
    tg_shift_k: float = 0.0                   # melt line extrapolated to Tg_sim − shift (K)
    # bumped whenever this preset's MD schedule or density estimator changes meaning
    protocol_version: int = 1
    # --- QM ---
    qm_method: str = "CAM-B3LYP"
    qm_basis: str = "aug-cc-pVDZ"
    qm_mode: str = "dimer_minus_monomer"
    qm_optimise: bool = True
    qm_density_fit: bool = False      # RI-JK SCF + RI response kernel: α within 2e-5 relative of
                                      # the exact integrals, 2.7x faster (PS unit, 6-31+G*)
    qm_grid_level: int | None = None  # DFT grid (PySCF level 0-9; None = 3). Level 1: α within
                                      # 1.5e-5 relative of level 3, 1.8-2x faster (qm.py)
    qm_concurrent_min_atoms: int = 0  # with ≥ 2 threads, a QM molecule smaller than this runs
                                      # first on all threads and the MD then gets all threads;
                                      # larger ones run beside the MD (cores split)
    # --- parallelism (overridden by configuration / run_pipeline(threads=...)) ---
    mpi_ranks: int = 1
    omp_threads: int = 1
    # --- wall-time limits per step (s) ---
    timeouts: dict = field(default_factory=lambda: {
        "build": 600, "forcefield": 3600, "cell": 1800, "md": 72 * 3600, "qm": 24 * 3600})

    def __post_init__(self) -> None:
        if self.forcefield not in FORCEFIELDS:
            raise ValueError(f"Unknown force field {self.forcefield!r}; choose one of "
                             f"{', '.join(FORCEFIELDS)}.")
        if not 0.5 <= self.lj_epsilon_scale <= 2.0:
            raise ValueError(f"lj_epsilon_scale must be between 0.5 and 2 (got "
                             f"{self.lj_epsilon_scale}).")
        if self.chain_topology not in CHAIN_TOPOLOGIES:
            raise ValueError(f"Unknown chain topology {self.chain_topology!r}; choose one of "
                             f"{', '.join(CHAIN_TOPOLOGIES)}.")
        if self.density_method not in DENSITY_METHODS:
            raise ValueError(f"Unknown density method {self.density_method!r}; choose one of "
                             f"{', '.join(DENSITY_METHODS)}.")
        temps = tuple(self.ladder_temps)
        if temps and (len(temps) < 4 or any(b >= a for a, b in zip(temps, temps[1:]))
                      or min(temps) <= 0):
            raise ValueError("ladder_temps must be at least 4 positive temperatures (K), hottest "
                             f"first and strictly decreasing; got {temps}.")
        if self.density_method == "melt_line" and not temps:
            raise ValueError("density_method 'melt_line' needs a cooling ladder (ladder_temps).")

    @property
    def protocol(self) -> str:
        """Version tag of the MD protocol, stored in every record beside the force field (records
        of different protocols are never mixed silently): ``<name>-md<version>-<density method>``.
        """
        return f"{self.name}-md{self.protocol_version}-{self.density_method}"

    def with_overrides(self, **kw) -> "Preset":
        """A copy with some fields replaced (unknown names raise TypeError)."""
        return replace(self, **kw)

    def to_dict(self) -> dict:
        """JSON-serialisable view (stages as lists)."""
        from dataclasses import asdict  # noqa: PLC0415
        return asdict(self)


def _stages(*rows) -> tuple[Stage, ...]:
    return tuple(Stage(*r) for r in rows)


SMOKE = Preset(
    name="smoke", chain_atoms=60, n_chains=2, min_dp=3,
    charge_oligomer_n=3, sqm_maxcyc_sulfur=0, pack_density=0.3, pack_tolerance=2.0,
    timestep_fs=1.0, shake=True, lj_inner=6.0, lj_outer=8.0, lj_tail=True, pppm_accuracy=1e-4,
    minimise_steps=200, heat_time_ps=0.2, t_max=600.0,
    compress_stages=_stages(("npt", 600.0, 300.0, 5000.0, 0.3, "compress")),
    equil_stages=(),
    production_ps=0.3, production_average_ps=0.2, thermo_every_ps=0.02, max_extensions=0,
    drift_tolerance=0.05,
    # a token ladder so CI runs the cooling-ladder code path (its Tg means nothing)
    ladder_temps=(600.0, 500.0, 400.0, 300.0), ladder_heat_ps=0.1, ladder_equil_ps=0.04,
    ladder_sample_ps=0.1, protocol_version=2,
    qm_method="HF", qm_basis="STO-3G", qm_mode="capped_monomer", qm_optimise=False,
    timeouts={"build": 120, "forcefield": 300, "cell": 120, "md": 600, "qm": 600},
)

QUICK = Preset(
    name="quick", chain_atoms=160, n_chains=4, min_dp=4,
    charge_oligomer_n=3, sqm_maxcyc_sulfur=50, pack_density=0.3, pack_tolerance=2.0,
    timestep_fs=2.0, shake=True, lj_inner=8.0, lj_outer=10.0, lj_tail=True, pppm_accuracy=1e-4,
    minimise_steps=2000, heat_time_ps=5.0, t_max=600.0,
    compress_stages=_stages(
        ("npt", 600.0, 600.0, 1000.0, 5.0, "compress-1k"),
        ("npt", 600.0, 600.0, 20000.0, 10.0, "compress-20k"),
        ("npt", 600.0, 300.0, 20000.0, 10.0, "quench-20k"),
    ),
    equil_stages=larsen_21_step(t_max=600.0, p_max=50000.0, scale=0.02)[:-1] + _stages(
        ("npt", 300.0, 300.0, 1.0, 10.0, "relax-1atm"),),
    production_ps=40.0, production_average_ps=30.0, thermo_every_ps=0.2, max_extensions=1,
    drift_tolerance=0.02,
    # CAM-B3LYP, not HF: HF misses dispersion (PMMA ν_D 70 vs 58 exp at the experimental density);
    # with density fitting the PS unit takes 39 s on 2 idle cores (HF without RI: 50 s).
    qm_method="CAM-B3LYP", qm_basis="6-31+G*", qm_mode="capped_monomer", qm_optimise=False,
    qm_density_fit=True, qm_grid_level=1,
    # PS (18 atoms): QM 33 s on 1 thread, and LAMMPS runs 1.9x faster on 2 threads than on 1
    qm_concurrent_min_atoms=26,
    timeouts={"build": 300, "forcefield": 900, "cell": 300, "md": 1800, "qm": 3600},
)

STANDARD = Preset(
    name="standard", chain_atoms=1000, n_chains=10, min_dp=5,
    charge_oligomer_n=3, sqm_maxcyc_sulfur=500, pack_density=0.05, pack_tolerance=2.0,
    # RadonPy's lj/charmm/coul/long 8/12 has no long-range dispersion (~200–500 atm missing for
    # PS/PMMA, +0.6–1.5 % density): a plain 12 Å LJ cut-off with the analytic tail correction
    timestep_fs=1.0, shake=True, lj_inner=8.0, lj_outer=12.0, lj_tail=True, pppm_accuracy=1e-6,
    minimise_steps=20000, heat_time_ps=100.0, t_max=700.0,
    compress_stages=_stages(("npt", 700.0, 700.0, 1000.0, 1000.0, "compress-0.8")),
    equil_stages=larsen_21_step(t_max=600.0, p_max=50000.0, scale=1.0),
    production_ps=5000.0, production_average_ps=2000.0, thermo_every_ps=1.0, max_extensions=4,
    drift_tolerance=0.01,
    # dilatometry after the production: 700 → 250 K in 25 K steps, 0.1 ns equilibration + 0.2 ns
    # sampling each (0.083 K/ps, 5.9 ns); gives Tg_sim and the melt-line density beside the
    # RadonPy-style 300 K density (which stays the record's density: the melt line is not yet
    # validated at this scale, see benchmarks/bench_density.py)
    ladder_temps=tuple(float(t) for t in range(700, 249, -25)), ladder_heat_ps=200.0,
    ladder_equil_ps=100.0, ladder_sample_ps=200.0, protocol_version=2,
    # RadonPy used ωB97M-D3BJ/6-311+G(2d,p); PySCF's 6-311+G(2d,p) has no S, Cl, Br, I, so the
    # standard preset uses aug-cc-pVDZ (diffuse, defined for H–Ar and Br; I falls back to
    # def2-SVPD with a warning in core.simulation.qm).  CAM-B3LYP beat HF on n_D and ν_D for
    # PS/PMMA (benchmarks/bench_qm.py).
    qm_method="CAM-B3LYP", qm_basis="aug-cc-pVDZ", qm_mode="dimer_minus_monomer",
    qm_optimise=True, qm_density_fit=True,
)

PRESETS: dict[str, Preset] = {p.name: p for p in (SMOKE, QUICK, STANDARD)}


class UnknownPreset(ValueError):
    """The preset name is not one of ``smoke``, ``quick``, ``standard``."""


def get_preset(name: "str | Preset") -> Preset:
    """Return the named preset (a Preset instance passes through unchanged)."""
    if isinstance(name, Preset):
        return name
    try:
        return PRESETS[str(name).strip().lower()]
    except KeyError:
        raise UnknownPreset(
            f"Unknown simulation preset {name!r}; choose one of {', '.join(PRESETS)}.") from None
