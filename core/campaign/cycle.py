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
from core.optimize.proposal import (Candidates, Observations, Pending, Proposal, ProposalConfig,
                                    ProposalError, propose)
from core.execution.runner import CampaignHooks
from core.store import Store

__all__ = ["PoolData", "ProposalError", "load_campaign_pool", "pool_candidates",
           "observation_matrix",
           "propose_batch", "cycle_metrics", "record_cycle_metrics", "campaign_observations",
           "campaign_model_check",
           "limit_line_of", "RUNNER_HOOKS"]


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


def _failed_last_cycle(store: Store, cid: int) -> set[str]:
    """Canonical SMILES of polymers whose calculation failed in the latest cycle that has
    calculations.  A retry re-queues the calculation, so a retried polymer is pending instead
    (still never proposed twice); a failure of an older cycle may be proposed again."""
    calcs = store.calculations(cid)
    cycles = pd.to_numeric(calcs["cycle"], errors="coerce").dropna()
    if cycles.empty:
        return set()
    last = cycles.max()
    failed = calcs[(calcs["status"] == CalcState.FAILED)
                   & (pd.to_numeric(calcs["cycle"], errors="coerce") == last)]
    return {_canon(s) for s in failed["psmiles"]}


def _excluded_canonical(store: Store, cid: int, grouped: pd.DataFrame) -> set[str]:
    """Canonical SMILES of evaluated, pending (queued/running), rejected polymers and those
    whose calculation failed in the last cycle (:func:`_failed_last_cycle`)."""
    out = set(grouped["canonical"]) if "canonical" in grouped else set()
    pend = store.calculations(cid, status=PENDING_CALC_STATES)
    out |= {_canon(s) for s in pend["psmiles"]}
    rej = store.rejected(cid)
    out |= {_canon(s) for s in rej["psmiles"].dropna()}
    out |= _failed_last_cycle(store, cid)
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
            "n_failed_excluded": len(_failed_last_cycle(store, camp["id"])),
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
