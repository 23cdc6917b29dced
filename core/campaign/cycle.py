"""One step of the closed loop: refit the surrogates and propose the next batch (EHVI).

:func:`propose_batch` is what the runner calls when a batch finishes, what ``python -m
core.campaign propose`` and the dashboard's "re-propose" button call:

1. candidates = campaign pool (shipped default pool or a CSV, plus the campaign's extra
   candidates) minus evaluated, pending (queued/running), rejected polymers and those whose
   calculation failed in the last cycle (until retried; a retry makes them pending), matched by
   canonical polymer SMILES (:func:`core.chem.polymer.canonical_psmiles`; the pool stores them
   canonical, so 10k candidates need no RDKit work); stored keys are
   :func:`core.chem.polymer.polymer_key`;
2. X of the observations: the pool's descriptor when the polymer is in the pool, else the
   170-d force-field kernel mean embedding (``core.chem.descriptors.ff_kernel_mean_batch``),
   cached in the store;
3. one GP per objective (``core.optimize.surrogate.fit_surrogates``, the campaign's kernel),
   predictions
   over every candidate in original units;
4. EHVI against the observed Pareto front and the campaign's reference point (both objectives
   maximised, ``core.optimize.acquisition.select_batch``; "believer" = Kriging believer with
   posterior
   variances conditioned on the fantasies), probability of lying beyond the limit line
   (``core.optimize.acquisition.probability_beyond_line``);
5. the batch, its per-candidate mean ± σ, EHVI and P(beyond), and the joint expected
   hypervolume gain (Monte Carlo, ``core.optimize.acquisition.expected_batch_gain``) are written to
   the
   store; pool-wide predictions too (for the pool page).

The campaign's settings ``exclude_flagged``, ``exclude_unsimulable`` and ``cost_aware`` reach
the proposal as per-row facts of the pool (:func:`pool_candidates`).

Steps 3–4 are :func:`core.optimize.proposal.propose`, the pure function the back-test runs as
well;
this module gathers its inputs from the store and persists what it returns.

Pending calculations (a retried one still running) enter the front as fantasies; with
``keep_selected_of=<batch id>`` the still-selected candidates of a proposed batch are kept and
only the rest is re-optimised ("re-optimise the rest" after deselecting).

Candidates a person adds to a proposed batch (Batch page, "Add to batch" of the Pool page) get
the same numbers (:func:`add_to_batch`: :func:`core.optimize.proposal.score_candidates`, their
EHVI given the other batch members as pending), and every edit of the batch refreshes its joint
value (:func:`refresh_joint_value`).

Units: original units throughout (n_D and ν_D dimensionless; EHVI in n_D × ν_D units), as in
:mod:`core.optimize.proposal`.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import PENDING_CALC_STATES, BatchState, CalcState, CampaignConfig
from core.errors import InputError
from core.optimize.proposal import (Candidates, Observations, Pending, Proposal, ProposalConfig,
                                    ProposalError, propose, score_candidates)
from core.execution.runner import CampaignHooks
from core.store import Store

__all__ = ["PoolData", "ProposalError", "load_campaign_pool", "pool_candidates",
           "observation_matrix",
           "propose_batch", "cycle_metrics", "record_cycle_metrics", "campaign_observations",
           "campaign_model_check",
           "limit_line_of", "RUNNER_HOOKS", "score_batch_additions", "add_to_batch",
           "add_to_pending_batch", "batch_joint_gain", "refresh_joint_value"]


@dataclass
class PoolData:
    """Candidates of a campaign: ids, canonical polymer SMILES
    (``core.chem.polymer.canonical_psmiles``,
    also the matching key inside this module), descriptors X (n, 170), source per row."""

    ids: list[str]
    psmiles: list[str]
    X: np.ndarray
    source: list[str]


def _canon(s: str) -> str:
    from core.chem.polymer import canonical_psmiles  # noqa: PLC0415
    return canonical_psmiles(s)


def _key(s: str) -> str:
    from core.chem.polymer import polymer_key  # noqa: PLC0415
    return polymer_key(s)


def _default_pool() -> tuple[list[str], list[str], np.ndarray]:
    from core.pool import load_default_pool  # noqa: PLC0415
    pool = load_default_pool()  # cached by core.pool; psmiles are canonical already
    return ([str(i) for i in pool["ids"]], [str(s) for s in pool["psmiles"]],
            np.asarray(pool["X"], dtype=float))


@functools.lru_cache(maxsize=8)
def _csv_pool(path: str, mtime: float) -> tuple[tuple[str, ...], tuple[str, ...], np.ndarray]:
    df = pd.read_csv(path)
    if "psmiles" not in df.columns:
        raise ProposalError(f"pool file {path} needs a 'psmiles' column")
    ps = tuple(_canon(str(s)) for s in df["psmiles"])
    ids = tuple(str(i) for i in (df["id"] if "id" in df.columns else range(len(df))))
    dcols = [c for c in df.columns if c not in ("id", "psmiles", "key", "name", "source")]
    if len(dcols) == 170:
        X = df[dcols].to_numpy(dtype=float)
    else:
        from core.chem.descriptors import ff_kernel_mean_batch  # noqa: PLC0415
        X = np.asarray(ff_kernel_mean_batch(list(ps)), dtype=float)
    return ids, ps, X


def _descriptors_for(store: Store, psmiles: list[str], keys: list[str]) -> np.ndarray:
    """Descriptors by key from the store cache, computing (and caching) the missing ones;
    a polymer the descriptor cannot handle gets a NaN row (never cached)."""
    if not keys:
        return np.zeros((0, 170))
    cached = store.cached_descriptors(keys)
    missing = [i for i, k in enumerate(keys) if k not in cached]
    if missing:
        from core.chem.descriptors import ff_kernel_mean_batch  # noqa: PLC0415
        Xm = np.asarray(ff_kernel_mean_batch([psmiles[i] for i in missing], on_error="nan"),
                        dtype=float)
        new = {keys[i]: Xm[j] for j, i in enumerate(missing)}
        store.cache_descriptors({k: v for k, v in new.items() if np.all(np.isfinite(v))})
        cached.update(new)
    return np.vstack([cached[k] for k in keys])


def load_campaign_pool(store: Store, campaign: Any) -> PoolData:
    """The campaign's candidates (pool + extra uploads, de-duplicated by canonical SMILES)."""
    cfg = store.campaign_config(campaign)
    if cfg.pool_source == "default":
        ids, ps, X = _default_pool()
    else:
        p = Path(cfg.pool_source).expanduser()
        if not p.is_file():
            raise ProposalError(f"pool file {p} not found")
        ids, ps, X = _csv_pool(str(p.resolve()), p.stat().st_mtime)
    ids_l, ps_l, src = list(ids), list(ps), ["pool"] * len(ids)
    blocks = [X]
    extra = store.pool_candidates(campaign)
    if len(extra):
        seen = set(ps_l)
        rows = []
        for r in extra.itertuples():
            c = _canon(r.psmiles)
            if c not in seen:
                seen.add(c)
                rows.append((f"extra-{r.id}", c, r.key, r.source or "upload"))
        if rows:
            blocks.append(_descriptors_for(store, [r[1] for r in rows], [r[2] for r in rows]))
            ids_l += [r[0] for r in rows]
            ps_l += [r[1] for r in rows]
            src += [r[3] for r in rows]
    return PoolData(ids=ids_l, psmiles=ps_l, X=np.vstack(blocks), source=src)


def observation_matrix(store: Store, campaign: Any, pool: PoolData,
                       obs: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(X (n, 170), Y (n, 2) in objective order, per-polymer frame with ``canonical`` and
    ``has_descriptor``).

    Only observations of the campaign's own fidelity count (:func:`campaign_observations`).
    Repeated observations of one polymer are averaged per objective; polymers without a
    descriptor (untypable) are left out of X and Y but stay in the frame (and are excluded from
    proposals as evaluated).
    """
    cfg = store.campaign_config(campaign)
    obs = campaign_observations(store, campaign)[0] if obs is None else obs
    if obs.empty:
        return np.zeros((0, pool.X.shape[1])), np.zeros((0, 2)), obs.assign(canonical=[])
    grouped = obs.groupby("key", sort=False).agg(
        {"psmiles": "first", **{o: "mean" for o in cfg.objectives}}).reset_index()
    grouped["canonical"] = [_canon(s) for s in grouped["psmiles"]]
    index = {c: i for i, c in enumerate(pool.psmiles)}
    X = np.empty((len(grouped), pool.X.shape[1]))
    rows_out = []
    for i, c in enumerate(grouped["canonical"]):
        if c in index:
            X[i] = pool.X[index[c]]
        else:
            rows_out.append(i)
    if rows_out:
        X[rows_out] = _descriptors_for(store, [grouped["psmiles"].iloc[i] for i in rows_out],
                                       [grouped["key"].iloc[i] for i in rows_out])
    Y = grouped[cfg.objectives].to_numpy(dtype=float)
    ok = np.all(np.isfinite(X), axis=1)
    grouped["has_descriptor"] = ok
    return X[ok], Y[ok], grouped


def _failed_polymers(store: Store, cid: int) -> set[str]:
    """Canonical SMILES of polymers whose calculation ended failed, in any cycle.

    A failed calculation has used its attempts or hit a deterministic error (a chain that cannot
    be built, an atom GAFF2 cannot type, MD that blows up); proposing the same polymer again
    repeats the same failure, as the first real campaign showed (a phosphazene failed in MD in
    cycle 1 and again in cycle 3).  So it stays out of every later proposal; a person who wants
    it can retry the calculation (it becomes pending) or add it by hand."""
    calcs = store.calculations(cid)
    if calcs.empty:
        return set()
    failed = calcs[calcs["status"] == CalcState.FAILED]
    return {_canon(s) for s in failed["psmiles"]}


def _excluded_canonical(store: Store, cid: int, grouped: pd.DataFrame) -> set[str]:
    """Canonical SMILES of evaluated, pending (queued/running), rejected polymers and those
    whose calculation failed (:func:`_failed_polymers`)."""
    out = set(grouped["canonical"]) if "canonical" in grouped else set()
    pend = store.calculations(cid, status=PENDING_CALC_STATES)
    out |= {_canon(s) for s in pend["psmiles"]}
    rej = store.rejected(cid)
    out |= {_canon(s) for s in rej["psmiles"].dropna()}
    out |= _failed_polymers(store, cid)
    return out


def limit_line_of(cfg: CampaignConfig):
    """The campaign's limit line (``core.chem.optics.LimitLine``), default when unset."""
    from core.chem.optics import LimitLine, load_default_limit_line  # noqa: PLC0415
    return LimitLine.from_dict(cfg.limit_line) if cfg.limit_line else load_default_limit_line()


def cycle_metrics(cfg: CampaignConfig, obs: pd.DataFrame) -> dict:
    """Hypervolume of the observed front above the reference point and the beyond-line count."""
    from core.optimize.acquisition import hypervolume_2d, pareto_front  # noqa: PLC0415
    if obs.empty:
        return {"hypervolume": 0.0, "n_beyond": 0, "n_observations": 0}
    Y = obs[cfg.objectives].to_numpy(dtype=float)
    hv = float(hypervolume_2d(pareto_front(Y), np.asarray(cfg.reference_point, dtype=float)))
    n_beyond = 0
    if set(cfg.objectives) >= {"n_D", "abbe_number"}:
        line = limit_line_of(cfg)
        n_beyond = int(np.sum(line.is_beyond(obs["n_D"].to_numpy(float),
                                             obs["abbe_number"].to_numpy(float))))
    return {"hypervolume": hv, "n_beyond": n_beyond, "n_observations": int(len(obs))}


def campaign_observations(store: Store, campaign: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(same, other): the campaign's observations of its own fidelity (its preset, force field
    and MD protocol, or declared initial data) and all others (other presets or protocol
    versions, smoke results, experimental values), split by
    :func:`core.campaign.fidelity.split_by_fidelity`.
    The surrogate, the front, the hypervolume and the beyond-line counts use ``same`` only."""
    from core.campaign.fidelity import campaign_fidelity, split_by_fidelity  # noqa: PLC0415

    cfg = store.campaign_config(campaign)
    return split_by_fidelity(store.observations(campaign), campaign_fidelity(cfg))


def campaign_model_check(store: Store, campaign: Any) -> pd.DataFrame:
    """The surrogate's predictions for every proposed batch against the results that came
    back (own fidelity only): :func:`core.optimize.model_check.model_check` per cycle and objective
    (n, bias, MAE, RMSE, fraction within 1σ / 2σ)."""
    from core.optimize.model_check import model_check, prediction_pairs  # noqa: PLC0415

    cfg = store.campaign_config(campaign)
    frames = []
    for b in store.batches(campaign).itertuples():
        c = store.batch_candidates(int(b.id))
        if len(c):
            frames.append(c[c["selected"].astype(bool)].assign(cycle=int(b.cycle)))
    cands = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    same = campaign_observations(store, campaign)[0]
    if len(same) and "cycle" in same:  # a polymer's result of its own cycle, not the seeds
        same = same[pd.to_numeric(same["cycle"], errors="coerce").fillna(0) > 0]
    return model_check(prediction_pairs(cands, same, cfg.objectives))


def record_cycle_metrics(store: Store, campaign: Any, cycle: int) -> dict:
    """Compute :func:`cycle_metrics` over the campaign's own-fidelity observations and store
    them on ``cycle``."""
    cfg = store.campaign_config(campaign)
    m = cycle_metrics(cfg, campaign_observations(store, campaign)[0])
    store.record_cycle_metrics(campaign, cycle, **m)
    return m


def propose_batch(store: Store, campaign: Any, *, q: int | None = None,
                  strategy: str | None = None, actor: str = "system", seed: int = 0,
                  keep_selected_of: int | None = None) -> dict:
    """Refit the surrogates, score the pool by EHVI and store a proposed batch; returns it.

    ``q``/``strategy`` default to the campaign's batch size and acquisition strategy.  Auto-
    approves when the campaign says so (the returned dict then has ``approval``).

    Pending-aware: queued/running calculations are never proposed again and their posterior
    means join the front as fantasies (Kriging believer) before the batch is chosen.

    ``keep_selected_of=<batch id>`` ("re-optimise the rest"): the still-selected candidates of
    that proposed batch are kept (predictions refreshed), its deselected ones are not proposed
    again in this batch, and the remaining ``q − kept`` places are filled by the acquisition
    with the kept candidates' posterior means added to the front as fantasies.

    Gathers the inputs from the store, calls :func:`core.optimize.proposal.propose` (the same
    function
    the back-test runs) and persists the batch and the pool-wide predictions.
    """
    t0 = time.perf_counter()
    camp = store.get_campaign(campaign)
    cfg = CampaignConfig.from_dict(camp["config"])
    q = int(q or cfg.batch_size)
    strategy = strategy or cfg.acquisition_strategy
    pool = load_campaign_pool(store, camp["id"])
    same, other = campaign_observations(store, camp["id"])
    X, Y, grouped = observation_matrix(store, camp["id"], pool, same)
    if len(Y) < 2:
        from core.campaign.fidelity import campaign_fidelity  # noqa: PLC0415
        apart = (f"; {len(other)} observation(s) of other fidelities ("
                 f"{', '.join(dict.fromkeys(other['fidelity']))}) are not mixed in"
                 if len(other) else "")
        raise ProposalError(f"campaign {camp['name']!r} has {len(Y)} distinct observed "
                            f"polymer(s) of its own fidelity ({campaign_fidelity(cfg).label})"
                            f"{apart}; the surrogate needs at least 2")
    exclude = _excluded_canonical(store, camp["id"], grouped)
    kept_rows = _kept_candidates(store, camp, keep_selected_of)
    if keep_selected_of is not None:
        exclude |= {_canon(s) for s in store.batch_candidates(keep_selected_of)["psmiles"]}
    pend = store.calculations(camp["id"], status=PENDING_CALC_STATES)
    kX = _descriptors_for_psmiles(store, pool, list(kept_rows["psmiles"]), list(kept_rows["key"]))
    pX = _descriptors_for_psmiles(store, pool, list(pend["psmiles"]), list(pend["key"]))
    config = ProposalConfig.for_campaign(cfg, q=q - len(kept_rows), strategy=strategy, seed=seed)
    prop = propose(Observations(X, Y), pool_candidates(store, pool, cfg), config,
                   Pending(X=np.vstack([kX, pX]), exclude=frozenset(exclude)))
    if q - len(kept_rows) > 0 and not prop.available.any() and not len(kept_rows):
        raise ProposalError("every pool candidate is evaluated, pending, rejected, "
                            "failed in the last cycle or left out by the campaign's settings "
                            f"({_screened_text(prop.screened_out)})")
    scores = _Scores(cfg, prop)
    cands = [scores.kept(r, x) for r, x in zip(kept_rows.itertuples(), kX)]
    cands += [scores.chosen(pool, int(i), rank) for rank, i in enumerate(prop.rows)]
    if not cands:
        raise ProposalError("nothing to propose")
    sel = prop.selection
    joint, joint_se = scores.joint_gain(cands, seed)
    finite = np.all(np.isfinite(pool.X), axis=1)
    info = {"kernel": config.kernel, "n_observations": int(len(Y)),
            "n_observations_other_fidelity": int(len(other)),
            "n_pool": int(len(pool.psmiles)), "n_pool_without_descriptor": int((~finite).sum()),
            "n_observations_without_descriptor": int((~grouped["has_descriptor"]).sum()),
            "n_available": int(prop.available.sum()), "reference_point": cfg.reference_point,
            "n_kept": len(kept_rows), "kept_from_batch": keep_selected_of,
            "n_pending_fantasies": int(np.all(np.isfinite(pX), axis=1).sum()),
            "n_failed_excluded": len(_failed_polymers(store, camp["id"])),
            "screened_out": prop.screened_out, "cost_aware": config.cost_aware,
            "believed_gain": None if sel is None else sel.believed_gain,
            "expected_gain_se": joint_se,
            "ehvi_initial": [] if sel is None else [float(v) for v in sel.ehvi_initial],
            "surrogate": {n: m.info for n, m in prop.surrogate.models.items()},
            "seconds": round(time.perf_counter() - t0, 3)}
    batch = store.create_batch(camp["id"], cands, strategy=strategy, joint_value=joint,
                               info=info, actor=actor)
    store.save_predictions(camp["id"], int(batch["cycle"]), scores.pool_frame(pool))
    if cfg.auto_approve:
        batch["approval"] = store.approve_batch(batch["id"], actor="auto-approve")
    return batch


def pool_candidates(store: Store, pool: PoolData, cfg: CampaignConfig) -> Candidates:
    """The pool as :class:`core.optimize.proposal.Candidates`, with the per-row facts the
    campaign's settings need (motif flags, the simulability pre-check and the estimated CPU
    seconds of ``cfg.preset``, from :func:`core.optimize.cost_estimate.screen`: the shipped
    pool's values are shipped, others are cached in the store)."""
    if not (cfg.exclude_flagged or cfg.exclude_unsimulable or cfg.cost_aware):
        return Candidates(pool.X, pool.psmiles)
    from core.optimize.cost_estimate import screen  # noqa: PLC0415

    sc = screen(pool.psmiles, cfg.preset, cache=store)
    return Candidates(pool.X, pool.psmiles, flagged=sc["flagged"].to_numpy(bool),
                      simulable=sc["simulable"].to_numpy(bool),
                      cost_s=sc["cost_cpu_min"].to_numpy(float) * 60.0)


def _screened_text(screened_out: dict) -> str:
    return ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in screened_out.items()) or \
        "none left out by them"


def _propose_for_runner(store: Store, campaign_id: int) -> dict:
    """The runner's proposal once a cycle closed (audited as the runner's)."""
    return propose_batch(store, campaign_id, actor="runner")


#: what the runner asks of the campaign layer (wired in by ``python -m core.runner``)
RUNNER_HOOKS = CampaignHooks(batch_finished=record_cycle_metrics,
                             propose_next=_propose_for_runner)


def _kept_candidates(store: Store, camp: dict, batch_id: int | None) -> pd.DataFrame:
    """The still-selected, not rejected candidates of proposed batch ``batch_id`` (none when
    None); raises :class:`ProposalError` for a batch that is not a proposed one of ``camp``."""
    if batch_id is None:
        return pd.DataFrame({"psmiles": [], "key": []})
    old_b = store.get_batch(batch_id)
    if old_b["campaign_id"] != camp["id"] or old_b["status"] != BatchState.PROPOSED:
        raise ProposalError(f"batch {batch_id} is not a proposed batch of {camp['name']!r}")
    old = store.batch_candidates(batch_id)
    return old[old["selected"] & ~old["rejected"]]


class _Scores:
    """Per-candidate numbers the store keeps: posterior mean ± σ (original units), EHVI
    against the observed front, P(beyond the limit line), and the batch's joint gain."""

    def __init__(self, cfg: CampaignConfig, prop: Proposal) -> None:
        self.o, self.prop = cfg.objectives, prop
        self.ref = np.asarray(cfg.reference_point, dtype=float)
        self.line = limit_line_of(cfg) if set(self.o) >= {"n_D", "abbe_number"} else None

    def p_beyond(self, m: np.ndarray, sd: np.ndarray) -> np.ndarray:
        from core.optimize.acquisition import probability_beyond_line  # noqa: PLC0415
        if self.line is None or not len(m):
            return np.full(len(m), np.nan)
        return probability_beyond_line(m, sd, self.line, n_col=self.o.index("n_D"),
                                       abbe_col=self.o.index("abbe_number"))

    def ehvi(self, m: np.ndarray, sd: np.ndarray) -> np.ndarray:
        from core.optimize.acquisition import ehvi_2d  # noqa: PLC0415
        return ehvi_2d(m, sd, self.prop.front, self.ref) if len(m) else np.zeros(0)

    def kept(self, r: Any, x: np.ndarray) -> dict:
        """A kept candidate with refreshed predictions (None where its descriptor failed)."""
        m = s = np.full((1, 2), np.nan)
        e = pb = np.full(1, np.nan)
        if np.all(np.isfinite(x)):
            m, s = self.prop.surrogate.predict(x[None])
            e, pb = self.ehvi(m, s), self.p_beyond(m, s)
        return {"psmiles": r.psmiles, "key": r.key, "name": r.name, "pool_id": r.pool_id,
                "source": r.source, "pred_mean": {self.o[c]: _f(m[0, c]) for c in range(2)},
                "pred_std": {self.o[c]: _f(s[0, c]) for c in range(2)},
                "ehvi": _f(e[0]), "p_beyond": _f(pb[0])}

    def chosen(self, pool: PoolData, i: int, rank: int) -> dict:
        """The pool row ``i`` chosen at position ``rank`` of the selection."""
        m, s = self.prop.mean[i], self.prop.std[i]
        return {"psmiles": pool.psmiles[i], "key": _key(pool.psmiles[i]), "pool_id": pool.ids[i],
                "source": "acquisition" if pool.source[i] == "pool"
                else f"acquisition:{pool.source[i]}",
                "pred_mean": {self.o[j]: float(m[j]) for j in range(2)},
                "pred_std": {self.o[j]: float(s[j]) for j in range(2)},
                "ehvi": float(self.prop.selection.ehvi[rank]),
                "p_beyond": float(self.p_beyond(m[None], s[None])[0])}

    def joint_gain(self, cands: list[dict], seed: int) -> tuple[float, float]:
        """Monte-Carlo expected hypervolume gain of the whole batch and its standard error."""
        from core.optimize.acquisition import expected_batch_gain  # noqa: PLC0415
        o = self.o
        cm = np.array([[c["pred_mean"][o[0]], c["pred_mean"][o[1]]] for c in cands], dtype=float)
        cs = np.array([[c["pred_std"][o[0]], c["pred_std"][o[1]]] for c in cands], dtype=float)
        ok = np.all(np.isfinite(cm), axis=1) & np.all(np.isfinite(cs), axis=1)
        return expected_batch_gain(cm[ok], cs[ok], self.prop.front, self.ref, n_samples=512,
                                   rng=np.random.default_rng(seed))

    def pool_frame(self, pool: PoolData) -> pd.DataFrame:
        """Pool-wide predictions for the pool page (EHVI against the observed front)."""
        mean, std, o = self.prop.mean, self.prop.std, self.o
        finite = np.all(np.isfinite(pool.X), axis=1)
        ehvi_all, p_beyond = np.full(len(mean), np.nan), np.full(len(mean), np.nan)
        ehvi_all[finite] = self.ehvi(mean[finite], std[finite])
        p_beyond[finite] = self.p_beyond(mean[finite], std[finite])
        return pd.DataFrame({"pool_id": pool.ids, "psmiles": pool.psmiles,
                             f"pred_mean_{o[0]}": mean[:, 0], f"pred_std_{o[0]}": std[:, 0],
                             f"pred_mean_{o[1]}": mean[:, 1], f"pred_std_{o[1]}": std[:, 1],
                             "ehvi": ehvi_all, "p_beyond": p_beyond,
                             "available": self.prop.available})


def _f(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def _descriptors_for_psmiles(store: Store, pool: PoolData, psmiles: list[str],
                             keys: list[str]) -> np.ndarray:
    """Descriptors of given polymers: the pool's row when present, else computed/cached."""
    index = {c: i for i, c in enumerate(pool.psmiles)}
    canon = [_canon(s) for s in psmiles]
    out = np.empty((len(psmiles), pool.X.shape[1]))
    missing = [j for j, c in enumerate(canon) if c not in index]
    for j, c in enumerate(canon):
        if c in index:
            out[j] = pool.X[index[c]]
    if missing:
        out[missing] = _descriptors_for(store, [psmiles[j] for j in missing],
                                        [keys[j] for j in missing])
    return out


# ---------------------------------------------------------------- candidates added by hand
def _joint_of(cfg: CampaignConfig, front: np.ndarray, cands: list[dict],
              seed: int) -> tuple[float, float]:
    """Expected hypervolume gain (and its Monte-Carlo standard error) of ``cands`` (dicts with
    ``pred_mean``/``pred_std`` per objective; rows without a finite prediction are left out)
    over ``front``: the computation and sampling of :meth:`_Scores.joint_gain`, so a batch
    scored again right after its proposal keeps its value."""
    from core.optimize.acquisition import expected_batch_gain  # noqa: PLC0415
    o = cfg.objectives
    cm = np.array([[c["pred_mean"].get(o[0]), c["pred_mean"].get(o[1])] for c in cands],
                  dtype=float).reshape(-1, 2)
    cs = np.array([[c["pred_std"].get(o[0]), c["pred_std"].get(o[1])] for c in cands],
                  dtype=float).reshape(-1, 2)
    ok = np.all(np.isfinite(cm), axis=1) & np.all(np.isfinite(cs), axis=1)
    return expected_batch_gain(cm[ok], cs[ok], front, np.asarray(cfg.reference_point, float),
                               n_samples=512, rng=np.random.default_rng(seed))


def _member_dicts(cands: pd.DataFrame, objectives: list[str]) -> list[dict]:
    """The selected, not rejected rows of :meth:`Store.batch_candidates` as prediction dicts,
    in rank order (the order :func:`propose_batch` computed the joint value in)."""
    live = cands[cands["selected"].astype(bool) & ~cands["rejected"].astype(bool)]
    return [{"psmiles": r["psmiles"], "key": r["key"],
             "pred_mean": {o: r[f"pred_mean_{o}"] for o in objectives},
             "pred_std": {o: r[f"pred_std_{o}"] for o in objectives}}
            for _, r in live.sort_values("rank").iterrows()]


def _proposed_batch(store: Store, batch_id: int) -> dict:
    from core.store import InvalidState  # noqa: PLC0415
    b = store.get_batch(batch_id)
    if b["status"] != BatchState.PROPOSED:
        raise InvalidState(f"batch {batch_id} is {b['status']}; candidates can only be added "
                           "to a proposed batch (waiting for approval)")
    return b


def batch_joint_gain(store: Store, batch_id: int, *, seed: int = 0) -> tuple[float, float, int]:
    """(joint value, its Monte-Carlo standard error, number of selected candidates without a
    prediction) of batch ``batch_id`` as it stands: the expected hypervolume gain of its
    selected, not rejected candidates (their stored mean ± σ) over the campaign's observed
    front, as :func:`propose_batch` computes it (512 samples, ``seed``); n_D × ν_D units.
    Candidates without a stored prediction are not counted (the third number says how many)."""
    b = store.get_batch(batch_id)
    cfg = store.campaign_config(b["campaign_id"])
    pool = load_campaign_pool(store, b["campaign_id"])
    Y = observation_matrix(store, b["campaign_id"], pool)[1]
    from core.optimize.acquisition import pareto_front  # noqa: PLC0415
    members = _member_dicts(store.batch_candidates(batch_id), cfg.objectives)
    n_unscored = sum(not all(pd.notna(v) and np.isfinite(float(v))
                             for d in (m["pred_mean"], m["pred_std"]) for v in d.values())
                     for m in members)
    value, se = _joint_of(cfg, pareto_front(Y), members, seed)
    return value, se, int(n_unscored)


def refresh_joint_value(store: Store, batch_id: int, *, seed: int = 0) -> float | None:
    """Recompute the joint value of a proposed batch after an edit (a candidate selected,
    deselected, rejected, restored or added: :func:`batch_joint_gain`) and store it; returns
    it, or None (nothing stored) when the batch is no longer proposed."""
    if store.get_batch(batch_id)["status"] != BatchState.PROPOSED:
        return None
    value, se, _ = batch_joint_gain(store, batch_id, seed=seed)
    store.set_batch_joint_value(batch_id, value, se)
    return value


def score_batch_additions(store: Store, batch_id: int, psmiles: list[str], *,
                          pool_ids: list[str | None] | None = None,
                          names: list[str | None] | None = None,
                          seed: int = 0) -> tuple[list[dict], tuple[float, float]]:
    """Check and score polymers a person wants to add to proposed batch ``batch_id``.

    Returns (candidate dicts for :meth:`Store.add_batch_candidates`: canonical ``psmiles``,
    ``key``, ``name``, ``pool_id`` (the campaign pool's id when the polymer is in it),
    ``pred_mean``/``pred_std`` per objective, ``ehvi``, ``p_beyond``; the batch's joint value
    and its standard error with them added).  Predictions come from the campaign's surrogates
    (:func:`core.optimize.proposal.score_candidates`, fitted as :func:`propose_batch` fits them
    with ``seed``); each one's EHVI is taken against the observed front with the batch's other
    selected members, the other polymers added with it and any queued/running calculation as
    pending fantasies.

    Raises, naming the polymer: :class:`core.chem.polymer.InvalidPolymer` for an invalid
    polymer SMILES; :class:`core.errors.InputError` for one given twice, already in the batch,
    already observed at the campaign's fidelity, already being calculated or without a
    descriptor (the surrogate cannot predict it); ``InvalidState`` for a batch that is not
    proposed; :class:`ProposalError` with fewer than 2 observations."""
    from core.chem.polymer import InvalidPolymer  # noqa: PLC0415
    b = _proposed_batch(store, batch_id)
    camp = store.get_campaign(b["campaign_id"])
    cfg = CampaignConfig.from_dict(camp["config"])
    if not psmiles:
        raise InputError("no polymer to add")
    k = len(psmiles)
    pool_ids = list(pool_ids) if pool_ids is not None else [None] * k
    names = list(names) if names is not None else [None] * k
    if len(pool_ids) != k or len(names) != k:
        raise InputError("psmiles, pool_ids and names must have one entry per polymer")
    canon: list[str] = []
    for s in psmiles:
        try:
            canon.append(_canon(str(s).strip()))
        except InvalidPolymer:
            raise
        except ValueError as err:  # RDKit and the parser's other refusals
            raise InvalidPolymer(f"{err}: {str(s)[:120]!r}") from err
    keys = [_key(c) for c in canon]
    if len(set(keys)) < k:
        dup = next(c for i, c in enumerate(canon) if keys[i] in keys[:i])
        raise InputError(f"{dup!r} is given twice")
    cands = store.batch_candidates(batch_id)
    there = dict(zip(cands["key"], cands["psmiles"]))
    pool = load_campaign_pool(store, camp["id"])
    same, _ = campaign_observations(store, camp["id"])
    X, Y, grouped = observation_matrix(store, camp["id"], pool, same)
    observed = dict(zip(grouped["canonical"], grouped.index)) if len(grouped) else {}
    pend = store.calculations(camp["id"], status=PENDING_CALC_STATES)
    pend_keys = dict(zip(pend["key"], pend["id"]))
    for c, key in zip(canon, keys):
        if key in there:
            raise InputError(f"{c!r} is already in batch {batch_id}")
        if c in observed:
            row = grouped.loc[observed[c]]
            vals = ", ".join(f"{o} {row[o]:.4g}" for o in cfg.objectives)
            raise InputError(f"{c!r} is already observed ({vals}); it is not simulated again")
        if key in pend_keys:
            raise InputError(f"{c!r} is already being calculated (calculation "
                             f"{int(pend_keys[key])})")
    Xn = _descriptors_for_psmiles(store, pool, canon, keys)
    bad = [c for c, x in zip(canon, Xn) if not np.all(np.isfinite(x))]
    if bad:
        raise InputError(f"no descriptor for {bad[0]!r} (the force-field typing failed), so "
                         "the surrogate cannot predict it")
    members = _member_dicts(cands, cfg.objectives)
    mX = _descriptors_for_psmiles(store, pool, [m["psmiles"] for m in members],
                                  [m["key"] for m in members])
    pX = _descriptors_for_psmiles(store, pool, list(pend["psmiles"]), list(pend["key"]))
    config = ProposalConfig.for_campaign(cfg, q=1, strategy=cfg.acquisition_strategy, seed=seed)
    prop, ehvi = score_candidates(Observations(X, Y), Xn, config,
                                  Pending(X=np.vstack([mX, pX])), mutual=True)
    scores = _Scores(cfg, prop)
    pb = scores.p_beyond(prop.mean, prop.std)
    index = {c: i for i, c in enumerate(pool.psmiles)}
    o = cfg.objectives
    out = []
    for j, (c, key) in enumerate(zip(canon, keys)):
        pid = pool_ids[j] if pool_ids[j] is not None else (
            pool.ids[index[c]] if c in index else None)
        out.append({"psmiles": c, "key": key, "name": names[j] or None,
                    "pool_id": None if pid is None else str(pid),
                    "pred_mean": {o[i]: float(prop.mean[j, i]) for i in range(2)},
                    "pred_std": {o[i]: float(prop.std[j, i]) for i in range(2)},
                    "ehvi": float(ehvi[j]), "p_beyond": _f(pb[j])})
    joint = _joint_of(cfg, prop.front, members + out, seed)
    return out, joint


def add_to_batch(store: Store, batch_id: int, psmiles: list[str], *,
                 pool_ids: list[str | None] | None = None,
                 names: list[str | None] | None = None, actor: str, seed: int = 0) -> dict:
    """Add polymers by hand to proposed batch ``batch_id`` with their predictions and EHVI
    (:func:`score_batch_additions`, whose errors it raises before anything changes) and store
    them with the batch's new joint value in one transaction
    (:meth:`Store.add_batch_candidates`, source ``manual``).  Returns ``{"batch_id",
    "cycle", "added": [candidate dicts], "joint_value", "joint_value_se"}``."""
    added, (joint, se) = score_batch_additions(store, batch_id, psmiles, pool_ids=pool_ids,
                                               names=names, seed=seed)
    store.add_batch_candidates(batch_id, added, joint_value=joint, joint_value_se=se,
                               actor=actor)
    b = store.get_batch(batch_id)
    return {"batch_id": int(batch_id), "cycle": int(b["cycle"]), "added": added,
            "joint_value": float(joint), "joint_value_se": float(se)}


def add_to_pending_batch(store: Store, campaign: Any, psmiles: list[str], *,
                         pool_ids: list[str | None] | None = None,
                         names: list[str | None] | None = None, actor: str,
                         seed: int = 0) -> dict:
    """:func:`add_to_batch` on the campaign's batch waiting for approval (the Pool page's
    "Add to batch").  Raises :class:`core.errors.InputError` saying so when the campaign has
    no proposed batch (none yet, or the current one is approved, running or finished)."""
    camp = store.get_campaign(campaign)
    b = store.current_batch(camp["id"])
    if b is None:
        raise InputError(f"campaign {camp['name']!r} has no batch yet: propose one on the "
                         "Batch page first")
    if b["status"] != BatchState.PROPOSED:
        raise InputError(f"campaign {camp['name']!r} has no batch waiting for approval (batch "
                         f"{b['id']} of cycle {b['cycle']} is {b['status']}); propose the next "
                         "one on the Batch page first")
    return add_to_batch(store, int(b["id"]), psmiles, pool_ids=pool_ids, names=names,
                        actor=actor, seed=seed)
