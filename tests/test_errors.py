"""The error hierarchy: every library error is an OptipolyError of one domain."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import core
from core.errors import CalculationError, ClusterError, InputError, OptipolyError, StoreError


def _library_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(core.__path__, "core."):
        if info.name.startswith("core.simulation") or info.name.endswith("__main__"):
            continue  # the simulation package keeps its own hierarchy until it is restructured
        mod = importlib.import_module(info.name)
        for name, obj in vars(mod).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and \
                    obj.__module__.startswith("core.") and \
                    not obj.__module__.startswith("core.simulation"):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def test_every_library_error_has_one_base_and_one_domain():
    errors = _library_exceptions()
    assert len(errors) >= 30
    domains = (InputError, StoreError, CalculationError, ClusterError)
    for name, cls in errors.items():
        assert issubclass(cls, OptipolyError), name
        if cls is not OptipolyError and cls not in domains:
            assert sum(issubclass(cls, d) for d in domains) <= 1, name


@pytest.mark.parametrize("dotted", [
    "core.chem.polymer.InvalidPolymer", "core.store.CampaignNotFound", "core.store.InvalidConfig",
    "core.campaign.cycle.ProposalError", "core.campaign.commands.ObservationImportError",
    "core.campaign.measurements.MeasurementImportError",
    "core.execution.cluster.ClusterConfigError", "core.execution.runner.RunnerStartError",
    "core.campaign.demo.DemoDataMissing", "core.pool.RowTooLong"])
def test_value_error_compatibility_is_kept(dotted):
    mod, name = dotted.rsplit(".", 1)
    assert issubclass(getattr(importlib.import_module(mod), name), ValueError)


def test_non_store_errors_are_not_store_errors():
    from core.campaign.cycle import ProposalError
    from core.campaign.demo import DemoDataMissing
    from core.execution.runner import RunnerStartError
    for cls in (ProposalError, DemoDataMissing, RunnerStartError):
        assert not issubclass(cls, StoreError), cls


def test_one_invalid_polymer_class():
    from core.chem.polymer import InvalidPolymer
    from core.chem.substructures import InvalidPolymerSmiles
    assert InvalidPolymerSmiles is InvalidPolymer
