"""core.simulation.build: the build step's time limit bounds every embedding attempt, and the
growth templates are embedded once per cell (shared by its chains)."""
from __future__ import annotations

import time

import pytest

pytest.importorskip("rdkit")

from core.simulation.build import build_chain  # noqa: E402
from core.simulation.errors import BuildError  # noqa: E402
from core.simulation.packing import packing_density_estimate  # noqa: E402


def test_a_passed_deadline_stops_the_build_with_a_message_naming_the_limit() -> None:
    with pytest.raises(BuildError, match="time limit"):
        build_chain("*CC(*)c1ccccc1", 5, seed=1, deadline=time.monotonic() - 1.0)
    with pytest.raises(BuildError, match="time limit"):  # no growth possible: ETKDG only
        build_chain("*CC(*)c1ccccc1", 1, seed=1, deadline=time.monotonic() - 1.0)


def test_no_deadline_or_a_future_one_builds_as_before() -> None:
    a = build_chain("*CC(*)c1ccccc1", 4, seed=3)
    b = build_chain("*CC(*)c1ccccc1", 4, seed=3, deadline=time.monotonic() + 300.0)
    assert a.method == b.method == "etkdg"
    assert a.mol.GetNumAtoms() == b.mol.GetNumAtoms() == 4 * 16 + 8


def test_growth_templates_are_embedded_once_and_shared_by_the_chains() -> None:
    templates: dict = {}
    c1 = build_chain("*CC(*)c1ccccc1", 6, seed=1, etkdg=False, templates=templates)
    assert c1.method == "grow-trimer"
    assert set(templates) == {3} and templates[3] is not None
    t3 = templates[3]
    c2 = build_chain("*CC(*)c1ccccc1", 6, seed=2, etkdg=False, templates=templates)
    assert c2.method == "grow-trimer" and templates[3] is t3  # reused, not embedded again
    # the chains still differ (their own random walks)
    p1, p2 = c1.mol.GetConformer().GetPositions(), c2.mol.GetConformer().GetPositions()
    assert abs(p1 - p2).max() > 0.5
    # a template that failed for one chain is not tried again for the next
    failed: dict = {3: None}
    c3 = build_chain("*CC(*)c1ccccc1", 6, seed=3, etkdg=False, templates=failed)
    assert c3.method == "grow-monomer" and failed[3] is None and failed[1] is not None


def test_packing_estimate_respects_the_deadline() -> None:
    with pytest.raises(BuildError, match="time limit"):
        packing_density_estimate("*CC(*)c1ccccc1C", deadline=time.monotonic() - 1.0)
    est = packing_density_estimate("*CC(*)c1ccccc1C", deadline=time.monotonic() + 300.0)
    assert 0.8 < est["density"] < 1.3


def test_a_growth_template_keeps_its_budget(monkeypatch) -> None:
    """A template build (grow_fallback False) passes its caller's budget to ETKDG; only a
    build with nothing to fall back on (a monomer) tries every attempt without a cap."""
    import core.simulation.build as B

    seen = []
    real = B._embed_etkdg

    def spy(mol, centres, **kw):
        seen.append(kw["budget_s"])
        return real(mol, centres, **kw)

    monkeypatch.setattr(B, "_embed_etkdg", spy)
    B.build_chain("*CC(*)C", 3, seed=1, grow_fallback=False, embed_budget_s=7.0)
    B.build_chain("*CC(*)C", 1, seed=1, embed_budget_s=7.0)
    B.build_chain("*CC(*)C", 3, seed=1, embed_budget_s=7.0)
    assert seen == [7.0, None, 7.0]
