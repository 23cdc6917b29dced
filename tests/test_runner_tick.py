"""Runner.tick() with an injected store and executor: no dask, no cluster, no subprocess.

The executor here runs each submitted spec in-process through a stand-in for the simulation
that returns a result record (the real pipeline is exercised by test_runner.py); what is under
test is the runner's bookkeeping around it: submission, result storage, batch completion and
the campaign-layer hooks.
"""
from __future__ import annotations

from typing import Any

from core.config import BatchState, CalcState
from core.chem.polymer import polymer_key
from core.execution.runner import CampaignHooks, Runner
from core.store import Store
from core.execution.task import CalculationSpec

VALUES = {"*CC(*)C": (1.49, 56.0), "*CC(*)c1ccccc1": (1.59, 31.0)}


class _Done:
    """A finished future in dask's interface (what ``Runner._collect_results`` reads)."""

    status = "finished"

    def __init__(self, value: dict) -> None:
        self.value = value

    def result(self) -> dict:
        return self.value

    def cancel(self) -> None:  # pragma: no cover - nothing to cancel once finished
        pass


class InProcessExecutor:
    """Runs the stand-in simulation at submission; remembers every spec it got."""

    def __init__(self) -> None:
        self.specs: list[CalculationSpec] = []

    def submit(self, spec: CalculationSpec) -> Any:
        self.specs.append(spec)
        n_d, abbe = VALUES[spec.psmiles]
        return _Done({"result": {"n_D": n_d, "abbe_number": abbe},
                      "execution": {"worker": "in-process", "job_id": None}})


def test_tick_runs_a_batch_to_the_end_without_dask(tmp_path):
    store = Store(tmp_path / "t.db")
    store.create_campaign("t", {"preset": "smoke"}, actor="test")
    b = store.create_batch("t", [{"psmiles": s, "key": polymer_key(s)} for s in VALUES],
                           strategy="ehvi", actor="test")
    store.approve_batch(b["id"], actor="test")
    finished, proposals = [], []
    hooks = CampaignHooks(
        batch_finished=lambda st, cid, cycle: finished.append(cycle) or {"cycle": cycle},
        propose_next=lambda st, cid: proposals.append(cid) or {"id": 0, "cycle": 2,
                                                              "n_selected": 0})
    ex = InProcessExecutor()
    runner = Runner(store.path, "t", store=store, executor=ex, hooks=hooks, log=lambda m: None)
    assert runner.tick()  # submits both calculations (their futures are done already)
    assert sorted(s.psmiles for s in ex.specs) == sorted(VALUES)
    assert all(s.preset == "smoke" and s.attempt == 1 and s.dask_key for s in ex.specs)
    runner.tick()  # collects the results, closes the batch, asks for the next proposal
    calcs = store.calculations("t")
    assert set(calcs["status"]) == {CalcState.DONE}
    assert store.observation_count("t") == 2
    assert store.get_batch(b["id"])["status"] == BatchState.DONE
    assert finished == [1] and proposals == [store.get_campaign("t")["id"]]
    assert not runner.tick()  # nothing queued or running any more
    assert proposals == [store.get_campaign("t")["id"]] * 2  # retried: no batch was created


def test_spec_round_trips_through_a_mapping():
    spec = CalculationSpec(calc_id=3, attempt=2, psmiles="*CC(*)C", preset="smoke",
                           workdir="/tmp/x", threads=2, dask_key="k")
    assert CalculationSpec.of(spec.to_dict()) == spec
    assert CalculationSpec.of({**spec.to_dict(), "unknown": 1}) == spec
