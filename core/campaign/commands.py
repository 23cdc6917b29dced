"""Campaign operations shared by the dashboard and the headless CLI.

``python -m core.campaign [--db PATH] COMMAND ...``

    new NAME [--preset P] [--batch-size Q] [--strategy ehvi|believer] [--ref N_D ABBE]
             [--pool default|PATH] [--kernel K] [--cluster JSON] [--auto-approve]
             [--initial FILE] [--measurements CSV [--source TEXT]]
             [--[no-]experimental-in-model] [--[no-]exclude-flagged]
             [--[no-]exclude-unsimulable] [--[no-]cost-aware] [--propose]
    config NAME [--[no-]exclude-flagged] [--[no-]exclude-unsimulable] [--[no-]cost-aware]
                                     (show the campaign's settings as JSON; change the
                                     proposal's screening settings, validated and audited)
    screen-pool [--out FILE]         (SA score, motif flags, CPU cost and pre-check of every
                                     polymer of the shipped pool for every preset, the file
                                     core.optimize.cost_estimate reads: assets/pool_screening.npz)
    import-measurements NAME --csv FILE [--source TEXT]
                                     (measured / literature n_D, ν_D as experimental
                                     observations; a file with a bad row imports nothing
                                     and exits 2 naming every bad line)
    propose NAME [--q Q] [--strategy S]
    approve NAME [--batch ID] [--deselect KEY ...] [--actor WHO]
                                     (exit code 2 when the batch was not approved, e.g.
                                     another approval won)
    status NAME [--json]
    cluster NAME [--use PROFILE | --json JSON]
                                     (show the campaign's cluster profile, or select a named
                                     profile of the owner's jobqueue.yaml, see
                                     core.execution.cluster_profiles, or store an inline one)
    export NAME --out DIR            (observations.csv + observations.json, with provenance)
    bundle NAME --out DIR [--no-csv] [--allow-pending]
                                     (DIR/NAME.json: everything the dashboard shows of the
                                     campaign, core.campaign.bundle; DIR/NAME.csv beside it)
    load-bundle FILE [--name NAME]   (recreate a bundled campaign in the store, nothing
                                     recomputed; exit code 2 for a name that exists or a bad
                                     file, and nothing changes)
    cancel NAME --calc ID            retry NAME --calc ID [--rerun]
    run NAME [--exit-when-idle]      (the runner in the foreground; same as python -m core.runner)

Exit codes: 0 done; 2 bad input or a database that cannot be used (one line on stderr naming
the problem: not an SQLite file, damaged, a directory, read-only for a change, disk full).
Read-only commands (status, export, bundle) work on a database this user may not write.

Functions (typed, no printing): :func:`create_campaign`, :func:`import_observations`,
:func:`load_observation_records`, :func:`campaign_status`, :func:`export_observations`,
:func:`write_export`.  The database defaults to ``$OPTIPOLY_DB`` or
``<repository>/var/optipoly.db``, the dashboard's database.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from core.config import (CalcState, CampaignConfig, DEFAULT_PRESET, PRESET_NAMES, Strategy,
                         default_db_path)
from core.errors import InputError
from core.store import Store, StoreError

__all__ = ["create_campaign", "import_observations", "load_observation_records",
           "campaign_status", "export_observations", "write_export", "default_db_path", "main",
           "ObservationImportError"]


class ObservationImportError(InputError):
    """An initial-observation record is unusable (the message names the record)."""



def load_observation_records(path: str | Path) -> list[dict]:
    """Read observation records from JSON (a list of ``{name, psmiles, result|values,
    provenance}``) or CSV (columns psmiles, name?, and one column per objective)."""
    p = Path(path)
    if not p.is_file():
        raise ObservationImportError(f"observation file {p} not found")
    if p.suffix.lower() == ".json":
        data = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "observations" in data:
            data = data["observations"]
        if not isinstance(data, list):
            raise ObservationImportError(f"{p}: expected a JSON list of records")
        return [dict(r) for r in data]
    with open(p, newline="", encoding="utf-8") as fh:
        return [dict(r) for r in csv.DictReader(fh)]


def import_observations(store: Store, campaign: Any, records: Iterable[Mapping[str, Any]], *,
                        source: str = "initial", actor: str = "cli") -> list[int]:
    """Add observation records (values from ``result``/``values`` or top-level keys) to cycle 0.

    Every record is checked first (psmiles valid, objectives finite); a bad record raises
    :class:`ObservationImportError` naming it and nothing is imported.
    """
    from core.chem.polymer import check_psmiles_characters, polymer_key  # noqa: PLC0415

    cfg = store.campaign_config(campaign)
    rows = []
    for i, rec in enumerate(records):
        label = _record_label(rec, i)
        ps = rec.get("psmiles")
        if not ps:
            raise ObservationImportError(f"{label}: no psmiles")
        try:
            ps = check_psmiles_characters(str(ps))
            key = polymer_key(ps)
        except ValueError as exc:
            raise ObservationImportError(f"{label}: invalid polymer SMILES: {exc}") from exc
        vals_src = rec.get("result") or rec.get("values") or rec
        vals = {}
        for o in cfg.objectives:
            try:
                v = float(vals_src[o])
            except (KeyError, TypeError, ValueError):
                raise ObservationImportError(f"{label}: no numeric {o!r}") from None
            if not math.isfinite(v):
                raise ObservationImportError(f"{label}: {o} is not finite")
            vals[o] = v
        result = rec.get("result") if isinstance(rec.get("result"), Mapping) else None
        prov = rec.get("provenance")
        if isinstance(prov, str):
            try:
                prov = json.loads(prov)
            except ValueError:
                prov = {"note": prov}
        rows.append((str(ps), key, rec.get("name"), vals, result, prov))
    ids = []
    for ps, key, name, vals, result, prov in rows:
        ids.append(store.add_observation(campaign, ps, vals, source=source, key=key, name=name,
                                         cycle=0, result=result, provenance=prov, actor=actor))
    return ids


def _record_label(rec: Mapping[str, Any], i: int) -> str:
    """How a record is named in messages: its name or polymer SMILES, escaped and cut to
    ~80 characters (never megabytes or invisible characters), else ``record <i>``."""
    from core.chem.polymer import preview  # noqa: PLC0415

    for k in ("name", "psmiles"):
        v = rec.get(k)
        if v:
            v = str(v)
            return v if v.isascii() and v.isprintable() and len(v) <= 80 else preview(v)
    return f"record {i}"


def create_campaign(store: Store, name: str, config: Mapping[str, Any] | None = None, *,
                    initial: Iterable[Mapping[str, Any]] | None = None, propose: bool = False,
                    actor: str = "cli",
                    measurements: Iterable[Mapping[str, Any]] | None = None,
                    measurements_source: str | None = None,
                    measurements_file: str | None = None) -> dict:
    """Create a campaign, import its initial observations and measured values
    (``measurements``: rows of :func:`core.campaign.measurements.parse_measurements_csv`, stored as
    experimental observations with ``measurements_source`` as the citation of rows without
    their own), record cycle-0 metrics and (``propose=True``) propose the first batch.
    Returns the campaign dict (plus ``batch``).

    All or nothing: everything is one store transaction (:meth:`Store.transaction`), so a
    failure at any step (bad record, failed proposal, disk full) leaves no campaign behind
    and the same command can simply be run again.  The write lock is held meanwhile, so
    other writers of the file wait during the first proposal (seconds).
    """
    from core.execution.cluster import validate_profile  # noqa: PLC0415
    from core.campaign.cycle import propose_batch, record_cycle_metrics  # noqa: PLC0415

    cfg = CampaignConfig.from_dict(config)
    validate_profile(cfg.cluster, cfg.preset)
    from core.campaign.measurements import import_measurements  # noqa: PLC0415

    records = list(initial or [])
    meas = list(measurements or [])
    with store.transaction():
        camp = store.create_campaign(name, cfg, actor=actor)
        if records:
            import_observations(store, camp["id"], records, actor=actor)
        if meas:
            import_measurements(store, camp["id"], meas, source=measurements_source,
                                file_name=measurements_file, actor=actor, cycle=0)
        record_cycle_metrics(store, camp["id"], 0)
        out = store.get_campaign(camp["id"])
        if propose:
            out["batch"] = propose_batch(store, camp["id"], actor=actor)
    return out


def campaign_status(store: Store, campaign: Any) -> dict:
    """Summary for CLIs and KPIs: cycle, fidelity, observations of the campaign's own fidelity
    and of others (not used by the model, core.campaign.fidelity), counts per calculation state,
    current batch, runner, per-cycle metrics and the model check (core.optimize.model_check)."""
    camp = store.get_campaign(campaign)
    calcs = store.calculations(camp["id"])
    counts = {s.value: int((calcs["status"] == s).sum()) for s in CalcState}
    cycles = store.cycles(camp["id"])
    batch = store.current_batch(camp["id"])
    from core.campaign.cycle import campaign_model_check, campaign_observations  # noqa: PLC0415
    from core.campaign.fidelity import campaign_fidelity  # noqa: PLC0415

    same, other = campaign_observations(store, camp["id"])
    return {
        "campaign": camp["name"], "config": camp["config"],
        "cycle": int(cycles["number"].max()) if len(cycles) else 0,
        "fidelity": campaign_fidelity(camp["config"]).label,
        "n_observations": int(len(same)),
        "n_observations_other_fidelity": int(len(other)),
        "other_fidelities": list(dict.fromkeys(other["fidelity"])) if len(other) else [],
        "model_check": campaign_model_check(store, camp["id"]).to_dict("records"),
        "calculations": counts,
        "current_batch": None if batch is None else
        {k: batch[k] for k in ("id", "cycle", "status", "strategy", "joint_value", "n_selected",
                               "approved_by", "approved_at")},
        "cycles": cycles.to_dict("records"),
        "runner": store.runner_status(camp["id"]),
    }


def export_observations(store: Store, campaign: Any) -> tuple[pd.DataFrame, list[dict]]:
    """(flat frame for CSV, list of full records for JSON) of all observations.

    The CSV has the objectives, n_F, n_C, density where known, source, cycle and a compact
    provenance JSON column; the JSON keeps the full result record and provenance.
    """
    camp = store.get_campaign(campaign)
    obs = store.observations(camp["id"])
    objs = camp["config"]["objectives"]
    flat, full = [], []
    for r in obs.to_dict("records"):
        res = r.get("result") or {}
        prov = r.get("provenance") or {}
        row = {"id": r["id"], "name": r["name"], "psmiles": r["psmiles"], "key": r["key"],
               **{o: r[o] for o in objs}}
        for extra in ("n_F", "n_C", "density", "preset"):
            if extra not in row:
                row[extra] = res.get(extra, prov.get(extra) if isinstance(prov, dict) else None)
        row.update({"source": r["source"], "cycle": r["cycle"],
                    "calculation_id": r["calculation_id"], "created_at": r["created_at"],
                    "provenance": json.dumps(prov, sort_keys=True, default=str)})
        flat.append(row)
        full.append({"id": r["id"], "name": r["name"], "psmiles": r["psmiles"], "key": r["key"],
                     "values": {o: r[o] for o in objs}, "source": r["source"],
                     "cycle": r["cycle"], "calculation_id": r["calculation_id"],
                     "created_at": r["created_at"], "result": res or None, "provenance": prov})
    cols = ["id", "name", "psmiles", "key", *objs, "n_F", "n_C", "density", "preset", "source",
            "cycle", "calculation_id", "created_at", "provenance"]
    cols = list(dict.fromkeys(cols))
    return pd.DataFrame(flat, columns=cols), full


def write_export(store: Store, campaign: Any, out_dir: str | Path) -> dict[str, Path]:
    """Write ``observations.csv`` and ``observations.json`` (with campaign config) to out_dir."""
    camp = store.get_campaign(campaign)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df, full = export_observations(store, camp["id"])
    csv_path = out / "observations.csv"
    json_path = out / "observations.json"
    df.to_csv(csv_path, index=False)
    json_path.write_text(json.dumps({"campaign": camp["name"], "config": camp["config"],
                                     "cycles": store.cycles(camp["id"]).to_dict("records"),
                                     "observations": full}, indent=1, default=str,
                                    allow_nan=True), encoding="utf-8")
    if not store.read_only:  # a read-only store can be exported, not audited
        store.log(camp["id"], "export", actor="cli", details={"dir": str(out)})
    return {"csv": csv_path, "json": json_path}


# --------------------------------------------------------------------------- CLI
#: the ``--strategy`` choices of ``new`` and ``propose``
STRATEGY_CHOICES: list[str] = [s.value for s in Strategy.for_campaigns()]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m core.campaign",
                                 description="Headless closed-loop campaigns.")
    ap.add_argument("--db", default=str(default_db_path()), help="SQLite database file")
    sub = ap.add_subparsers(dest="cmd", required=True)
    n = sub.add_parser("new", help="create a campaign")
    n.add_argument("name")
    n.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESET_NAMES))
    n.add_argument("--batch-size", type=int, default=10)
    n.add_argument("--strategy", default=Strategy.BELIEVER.value, choices=STRATEGY_CHOICES)
    n.add_argument("--ref", type=float, nargs=2, metavar=("N_D", "ABBE"))
    n.add_argument("--pool", default="default")
    n.add_argument("--kernel", default=None)
    n.add_argument("--cluster", default=None, help='JSON, e.g. {"profile": "slurm", ...}')
    n.add_argument("--max-attempts", type=int, default=3)
    n.add_argument("--auto-approve", action="store_true")
    n.add_argument("--initial", default=None, help="initial observations (.json or .csv)")
    n.add_argument("--measurements", default=None, metavar="CSV",
                   help="measured / literature values (psmiles,n_D,abbe_number[,name,source])"
                        " stored as experimental observations")
    n.add_argument("--source", default=None,
                   help="citation of the --measurements rows without a source column")
    n.add_argument("--experimental-in-model", action=argparse.BooleanOptionalAction,
                   default=None,
                   help="fit the surrogate (and count the front) on measured values too; "
                        "default: on when the campaign starts from --measurements alone, "
                        "else off (only the preset's own simulations count)")
    _screening_flags(n, defaults=True)
    n.add_argument("--propose", action="store_true", help="propose the first batch")
    n.add_argument("--actor", default=os.environ.get("USER", "cli"))
    p = sub.add_parser("propose", help="refit the surrogate and propose the next batch")
    p.add_argument("name")
    p.add_argument("--q", type=int, default=None)
    p.add_argument("--strategy", default=None, choices=STRATEGY_CHOICES)
    p.add_argument("--actor", default=os.environ.get("USER", "cli"))
    g = sub.add_parser("config", help="show the campaign's settings; change the screening ones")
    g.add_argument("name")
    _screening_flags(g, defaults=False)
    g.add_argument("--actor", default=os.environ.get("USER", "cli"))
    sp = sub.add_parser("screen-pool", help="precompute SA score, motif flags, CPU cost and the "
                                            "simulability pre-check of the shipped pool")
    sp.add_argument("--out", default=None, help="output .npz (default: the shipped file)")
    a = sub.add_parser("approve", help="approve the proposed batch")
    a.add_argument("name")
    a.add_argument("--batch", type=int, default=None)
    a.add_argument("--deselect", nargs="*", default=[])
    a.add_argument("--actor", default=os.environ.get("USER", "cli"))
    s = sub.add_parser("status", help="show the campaign state")
    s.add_argument("name")
    s.add_argument("--json", action="store_true")
    rp = sub.add_parser("report", help="results per cycle: evaluated, failures, beyond the limit "
                        "line, hypervolume, best n_D at ν_D ≥ 40, wall time; S / sulfonyl "
                        "fractions beyond the line (Markdown)")
    rp.add_argument("name")
    e = sub.add_parser("export", help="write observations.csv and observations.json")
    e.add_argument("name")
    e.add_argument("--out", required=True)
    c = sub.add_parser("cancel", help="cancel a calculation")
    c.add_argument("name")
    c.add_argument("--calc", type=int, required=True)
    c.add_argument("--actor", default=os.environ.get("USER", "cli"))
    t = sub.add_parser("retry", help="re-queue a failed or cancelled calculation")
    t.add_argument("name")
    t.add_argument("--calc", type=int, required=True)
    t.add_argument("--rerun", action="store_true", help="start over in a new work dir")
    t.add_argument("--actor", default=os.environ.get("USER", "cli"))
    m = sub.add_parser("import-measurements",
                       help="add measured / literature n_D, ν_D values from a CSV")
    m.add_argument("name")
    m.add_argument("--csv", required=True,
                   help="CSV with columns psmiles, n_D, abbe_number and optional name, source")
    m.add_argument("--source", default=None,
                   help='citation of rows without a source column, e.g. "Ando 2015"')
    m.add_argument("--actor", default=os.environ.get("USER", "cli"))
    k = sub.add_parser("cluster", help="show or set the campaign's cluster profile")
    k.add_argument("name")
    kg = k.add_mutually_exclusive_group()
    kg.add_argument("--use", default=None, metavar="PROFILE",
                    help="a named profile of $OPTIPOLY_JOBQUEUE_YAML or "
                         "~/.config/dask/jobqueue.yaml")
    kg.add_argument("--json", default=None, help='an inline profile, e.g. {"profile": "local"}')
    k.add_argument("--actor", default=os.environ.get("USER", "cli"))
    bu = sub.add_parser("bundle", help="write the campaign as one JSON bundle (to ship it)")
    bu.add_argument("name")
    bu.add_argument("--out", required=True, help="directory of NAME.json (and NAME.csv)")
    bu.add_argument("--no-csv", action="store_true", help="no flat observation CSV beside it")
    bu.add_argument("--allow-pending", action="store_true",
                    help="bundle even while calculations are queued or running")
    lb = sub.add_parser("load-bundle", help="recreate a bundled campaign in the store")
    lb.add_argument("file")
    lb.add_argument("--name", default=None, help="campaign name (default: the bundle's)")
    lb.add_argument("--actor", default=os.environ.get("USER", "cli"))
    r = sub.add_parser("run", help="run the runner in the foreground")
    r.add_argument("name")
    r.add_argument("--exit-when-idle", action="store_true")
    return ap


#: CLI flag -> CampaignConfig field of the proposal's screening settings
SCREENING_FLAGS: dict[str, str] = {
    "--exclude-flagged": "exclude_flagged", "--exclude-unsimulable": "exclude_unsimulable",
    "--cost-aware": "cost_aware"}
_SCREENING_HELP = {
    "exclude_flagged": "never propose a polymer with an unfit-motif flag "
                       "(core.chem.feasibility; default: off)",
    "exclude_unsimulable": "never propose a polymer that fails the simulability pre-check of "
                           "the preset (core.optimize.cost_estimate; default: on)",
    "cost_aware": "rank by EHVI per estimated CPU hour of the preset (default: off)"}


def _screening_flags(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """``--[no-]exclude-flagged`` etc.; with ``defaults`` the CampaignConfig defaults, else
    None (= leave the stored value)."""
    base = CampaignConfig()
    for flag, name in SCREENING_FLAGS.items():
        parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                            default=getattr(base, name) if defaults else None,
                            help=_SCREENING_HELP[name])


def _screening_changes(args: argparse.Namespace) -> dict[str, bool]:
    return {name: bool(getattr(args, name)) for name in SCREENING_FLAGS.values()
            if getattr(args, name) is not None}


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code: 0 done, 2 bad input, a database that cannot be
    used (:class:`StoreUnavailable`) or a batch that was not approved, with a one-line message
    on stderr."""
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (StoreError, ValueError, OSError) as exc:  # StoreUnavailable is a StoreError
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.cmd == "screen-pool":
        return _screen_pool(args.out)
    store = Store(args.db)
    if args.cmd == "new":
        cfg: dict[str, Any] = {"preset": args.preset, "batch_size": args.batch_size,
                               "acquisition_strategy": args.strategy, "pool_source": args.pool,
                               "surrogate_kernel": args.kernel, "max_attempts": args.max_attempts,
                               "auto_approve": bool(args.auto_approve)}
        cfg.update(_screening_changes(args))
        if args.ref:
            cfg["reference_point"] = list(args.ref)
        if args.cluster:
            cfg["cluster"] = json.loads(args.cluster)
        # a campaign started from measured values alone fits them (else it has no data of
        # its own fidelity, core.campaign.fidelity); an explicit flag always wins
        fit_measured = (args.experimental_in_model if args.experimental_in_model is not None
                        else bool(args.measurements) and not args.initial)
        cfg["experimental_in_model"] = bool(fit_measured)
        initial = load_observation_records(args.initial) if args.initial else None
        meas = None
        if args.measurements:
            from core.campaign.measurements import load_measurements_csv  # noqa: PLC0415
            meas = load_measurements_csv(args.measurements)
        camp = create_campaign(store, args.name, cfg, initial=initial, propose=args.propose,
                               actor=args.actor, measurements=meas,
                               measurements_source=args.source,
                               measurements_file=Path(args.measurements).name
                               if args.measurements else None)
        print(f"created campaign {camp['name']} (id {camp['id']}) with "
              f"{len(store.observations(camp['id']))} observation(s)"
              + ("; measured values are fitted too (--no-experimental-in-model to keep them "
                 "apart)" if fit_measured else ""))
        if "batch" in camp:
            _print_batch(store, camp["batch"]["id"])
        return 0
    if args.cmd == "config":
        changes = _screening_changes(args)
        if changes:
            store.update_config(args.name, changes, actor=args.actor)
        print(json.dumps(store.get_campaign(args.name)["config"], indent=1))
        return 0
    if args.cmd == "propose":
        from core.campaign.cycle import propose_batch  # noqa: PLC0415
        b = propose_batch(store, args.name, q=args.q, strategy=args.strategy, actor=args.actor)
        _print_batch(store, b["id"])
        return 0
    if args.cmd == "approve":
        bid = args.batch
        if bid is None:
            cur = store.current_batch(args.name)
            if cur is None:
                raise StoreError(f"campaign {args.name!r} has no batch to approve")
            bid = cur["id"]
        for key in args.deselect:
            store.set_candidate_selected(bid, key, False, actor=args.actor)
        res = store.approve_batch(bid, actor=args.actor)
        if not res["approved"]:  # not vocabulary: result key; e.g. a concurrent approval won: nothing was queued by us
            print(f"batch {bid}: not approved ({res['reason']})", file=sys.stderr)
            return 2
        print(f"batch {bid}: approved, {res['n_calculations']} calculation(s) queued")
        return 0
    if args.cmd == "report":
        from core.campaign.report import report_markdown  # noqa: PLC0415
        print(report_markdown(store, args.name))
        return 0
    if args.cmd == "status":
        st = campaign_status(store, args.name)
        if args.json:
            print(json.dumps(st, indent=1, default=str))
        else:
            print(f"campaign {st['campaign']}: cycle {st['cycle']}, "
                  f"{st['n_observations']} observation(s) of its fidelity ({st['fidelity']})")
            if st["n_observations_other_fidelity"]:
                print(f"  {st['n_observations_other_fidelity']} observation(s) of other "
                      f"fidelities, not used by the model: {', '.join(st['other_fidelities'])}")
            print("calculations: " + ", ".join(f"{k} {v}" for k, v in st["calculations"].items()))
            b = st["current_batch"]
            print("current batch: " + ("none" if b is None else
                                       f"{b['id']} (cycle {b['cycle']}, {b['status']}, "
                                       f"{b['n_selected']} selected)"))
            r = st["runner"]
            print("runner: " + ("never started" if r is None else
                                f"pid {r['pid']} {'alive' if r['alive'] else 'not running'}, "
                                f"heartbeat {r['age_s']:.0f} s ago"))
            cyc = pd.DataFrame(st["cycles"])
            if len(cyc):
                print(cyc[["number", "status", "hypervolume", "n_beyond",
                           "n_observations"]].to_string(index=False))
            mc = pd.DataFrame(st["model_check"])
            if len(mc):
                print("model check (GP prediction of each batch vs its results; calibrated: "
                      "68 % within 1σ, 95 % within 2σ):")
                print(mc.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        return 0
    if args.cmd == "import-measurements":
        from core.campaign.measurements import import_measurements, load_measurements_csv  # noqa
        rows = load_measurements_csv(args.csv)
        ids = import_measurements(store, args.name, rows, source=args.source,
                                  file_name=Path(args.csv).name, actor=args.actor)
        print(f"imported {len(ids)} measurement(s) into campaign {args.name} as experimental "
              f"observations ({len(store.observations(args.name))} observation(s) in all)")
        return 0
    if args.cmd == "export":
        paths = write_export(store, args.name, args.out)
        print(f"wrote {paths['csv']} and {paths['json']}")
        return 0
    if args.cmd == "bundle":
        from core.campaign.bundle import write_bundle  # noqa: PLC0415
        paths = write_bundle(store, args.name, args.out, csv=not args.no_csv,
                             allow_pending=args.allow_pending)
        print("wrote " + " and ".join(str(p) for p in paths.values()))
        return 0
    if args.cmd == "load-bundle":
        from core.campaign.bundle import load_bundle  # noqa: PLC0415
        camp = load_bundle(store, args.file, args.name, actor=args.actor)
        n_b = len(store.batches(camp["id"]))
        print(f"loaded campaign {camp['name']} (id {camp['id']}) from {args.file}: "
              f"{store.observation_count(camp['id'])} observation(s), {n_b} batch(es), "
              f"{len(store.cycles(camp['id']))} cycle(s); nothing queued or recomputed")
        return 0
    if args.cmd in ("cancel", "retry"):
        calc = store.get_calculation(args.calc)
        if calc["campaign"] != args.name:
            raise StoreError(f"calculation {args.calc} belongs to campaign {calc['campaign']!r}")
        if args.cmd == "cancel":
            new = store.request_cancel(args.calc, actor=args.actor)
        else:
            new = store.request_retry(args.calc, mode="rerun" if args.rerun else "resume",
                                      actor=args.actor)
        print(f"calculation {args.calc}: {new}")
        return 0
    if args.cmd == "cluster":
        from core.execution.cluster import ClusterProfile  # noqa: PLC0415
        from core.execution.cluster_profiles import describe, save_cluster_profile  # noqa: PLC0415
        if args.use is not None or args.json is not None:
            want = {"name": args.use} if args.use is not None else json.loads(args.json)
            # the owner at a shell may store inline profiles (the dashboard may not)
            save_cluster_profile(store, args.name, want, actor=args.actor, allow_editing=True)
        cl = store.get_campaign(args.name)["config"]["cluster"]
        print(f"campaign {args.name}: {describe(cl)}")
        print(json.dumps(ClusterProfile.from_dict(cl).to_dict(), indent=1))
        return 0
    if args.cmd == "run":
        from core.campaign.runner_cli import main as runner_main  # noqa: PLC0415
        extra = ["--exit-when-idle"] if args.exit_when_idle else []
        return runner_main(["--campaign", args.name, "--db", str(store.path), *extra])
    raise StoreError(f"unknown command {args.cmd}")  # pragma: no cover


def _screen_pool(out: str | None) -> int:
    """Write the shipped pool's screening (every preset) and print what it found per preset."""
    import time  # noqa: PLC0415

    from core.optimize import cost_estimate as ce  # noqa: PLC0415
    from core.pool import load_default_pool  # noqa: PLC0415

    ps = load_default_pool()["psmiles"]
    t0 = time.perf_counter()
    path = ce.write_shipped_screening(
        ps, out or ce.SHIPPED_SCREENING,
        progress=lambda d, n: print(f"  {d:,}/{n:,} ({time.perf_counter() - t0:.0f} s)",
                                    file=sys.stderr) if d % 1000 == 0 else None)
    print(f"wrote {path} ({len(ps):,} polymers, model {ce.screening_version()}, "
          f"{time.perf_counter() - t0:.0f} s)")
    if out is None:
        for preset in PRESET_NAMES:
            sc = ce.screen(ps, preset)
            print(f"  {preset}: {int(sc['flagged'].sum()):,} flagged, "
                  f"{int((~sc['simulable']).sum()):,} fail the pre-check, median "
                  f"{sc['cost_cpu_min'].median():.3g} CPU-min")
    return 0


def _print_batch(store: Store, batch_id: int) -> None:
    b = store.get_batch(batch_id)
    print(f"batch {b['id']} (cycle {b['cycle']}, {b['status']}, strategy {b['strategy']}, "
          f"joint expected HV gain {b['joint_value']})")
    df = store.batch_candidates(batch_id)
    cols = [c for c in df.columns if c.startswith("pred_") or c in ("rank", "psmiles", "ehvi",
                                                                    "p_beyond", "selected")]
    with pd.option_context("display.width", 200, "display.max_colwidth", 40):
        print(df[cols].to_string(index=False))
