"""One step of the closed loop: refit the surrogates and propose the next batch (EHVI).

:func:`propose_batch` is what the runner calls when a batch finishes, what ``python -m
core.campaign propose`` and the dashboard's "re-propose" button call:

1. candidates = campaign pool (shipped default pool or a CSV, plus the campaign's extra
   candidates) minus evaluated, pending (queued/running), rejected polymers and those whose
   calculation failed in the last cycle (until retried; a retry makes them pending), matched by
   canonical polymer SMILES (:func:`core.polymer.canonical_psmiles`; the pool stores them
   canonical, so 10k candidates need no RDKit work); stored keys are
   :func:`core.polymer.polymer_key`;
2. X of the observations: the pool's descriptor when the polymer is in the pool, else the
   170-d force-field kernel mean embedding (``core.descriptors.ff_kernel_mean_batch``),
   cached in the store;
3. one GP per objective (``core.surrogate.fit_surrogates``, the campaign's kernel), predictions
   over every candidate in original units;
4. EHVI against the observed Pareto front and the campaign's reference point (both objectives
   maximised, ``core.acquisition.select_batch``; "believer" = Kriging believer with posterior
   variances conditioned on the fantasies), probability of lying beyond the limit line
   (``core.acquisition.probability_beyond_line``);
5. the batch, its per-candidate mean ± σ, EHVI and P(beyond), and the joint expected
   hypervolume gain (Monte Carlo, :func:`joint_expected_gain`) are written to the store;
   pool-wide predictions too (for the pool page).

Pending calculations (a retried one still running) enter the front as fantasies; with
``keep_selected_of=<batch id>`` the still-selected candidates of a proposed batch are kept and
only the rest is re-optimised ("re-optimise the rest" after deselecting).

EHVI is computed in original units (n_D × ν_D); the per-axis scaling SPACIER applies (z-scores)
multiplies every hypervolume by the same constant, so the choice of candidates is identical.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import BatchState, CalcState, CampaignConfig, Strategy
from core.errors import InputError
from core.store import Store, StoreError

__all__ = ["PoolData", "ProposalError", "load_campaign_pool", "observation_matrix",
           "propose_batch", "cycle_metrics", "record_cycle_metrics", "limit_line_of",
           "joint_expected_gain"]


class ProposalError(InputError):
    """The next batch cannot be proposed (too few observations, empty pool …)."""


@dataclass
class PoolData:
    """Candidates of a campaign: ids, canonical polymer SMILES (``core.polymer.canonical_psmiles``,
    also the matching key inside this module), descriptors X (n, 170), source per row."""

    ids: list[str]
    psmiles: list[str]
    X: np.ndarray
    source: list[str]


def _canon(s: str) -> str:
    from core.polymer import canonical_psmiles  # noqa: PLC0415
    return canonical_psmiles(s)


def _key(s: str) -> str:
    from core.polymer import polymer_key  # noqa: PLC0415
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
        from core.descriptors import ff_kernel_mean_batch  # noqa: PLC0415
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
        from core.descriptors import ff_kernel_mean_batch  # noqa: PLC0415
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

    Repeated observations of one polymer are averaged per objective; polymers without a
    descriptor (untypable) are left out of X and Y but stay in the frame (and are excluded from
    proposals as evaluated).
    """
    cfg = store.campaign_config(campaign)
    obs = store.observations(campaign) if obs is None else obs
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
    pend = store.calculations(cid, status=(CalcState.QUEUED, CalcState.RUNNING))
    out |= {_canon(s) for s in pend["psmiles"]}
    rej = store.rejected(cid)
    out |= {_canon(s) for s in rej["psmiles"].dropna()}
    out |= _failed_last_cycle(store, cid)
    return out


def limit_line_of(cfg: CampaignConfig):
    """The campaign's limit line (``core.optics.LimitLine``), default when unset."""
    from core.optics import LimitLine, load_default_limit_line  # noqa: PLC0415
    return LimitLine.from_dict(cfg.limit_line) if cfg.limit_line else load_default_limit_line()


def cycle_metrics(cfg: CampaignConfig, obs: pd.DataFrame) -> dict:
    """Hypervolume of the observed front above the reference point and the beyond-line count."""
    from core.acquisition import hypervolume_2d, pareto_front  # noqa: PLC0415
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


def record_cycle_metrics(store: Store, campaign: Any, cycle: int) -> dict:
    """Compute :func:`cycle_metrics` over all observations and store them on ``cycle``."""
    cfg = store.campaign_config(campaign)
    m = cycle_metrics(cfg, store.observations(campaign))
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
    """
    from core.acquisition import (ehvi_2d, pareto_front, probability_beyond_line,  # noqa
                                  select_batch)
    from core.surrogate import DEFAULT_KERNEL, fit_surrogates  # noqa: PLC0415

    t0 = time.perf_counter()
    camp = store.get_campaign(campaign)
    cfg = CampaignConfig.from_dict(camp["config"])
    q = int(q or cfg.batch_size)
    strategy = strategy or cfg.acquisition_strategy
    pool = load_campaign_pool(store, camp["id"])
    X, Y, grouped = observation_matrix(store, camp["id"], pool)
    if len(Y) < 2:
        raise ProposalError(f"campaign {camp['name']!r} has {len(Y)} distinct observed "
                            "polymer(s); the surrogate needs at least 2")
    kernel = cfg.surrogate_kernel or DEFAULT_KERNEL
    sur = fit_surrogates(X, Y, cfg.objectives, kernel, seed=seed)
    finite = np.all(np.isfinite(pool.X), axis=1)
    mean, std = np.full((len(pool.psmiles), 2), np.nan), np.full((len(pool.psmiles), 2), np.nan)
    mean[finite], std[finite] = sur.predict(pool.X[finite])
    exclude = _excluded_canonical(store, camp["id"], grouped)
    n_failed_excluded = len(_failed_last_cycle(store, camp["id"]))
    ref = np.asarray(cfg.reference_point, dtype=float)
    front = pareto_front(Y)
    o = cfg.objectives
    p_line = limit_line_of(cfg) if set(o) >= {"n_D", "abbe_number"} else None

    def p_beyond_of(m: np.ndarray, sd: np.ndarray) -> np.ndarray:
        if p_line is None:
            return np.full(len(m), np.nan)
        return probability_beyond_line(m, sd, p_line, n_col=o.index("n_D"),
                                       abbe_col=o.index("abbe_number"))

    kept: list[dict] = []
    front_sel = front
    if keep_selected_of is not None:
        old_b = store.get_batch(keep_selected_of)
        if old_b["campaign_id"] != camp["id"] or old_b["status"] != BatchState.PROPOSED:
            raise ProposalError(f"batch {keep_selected_of} is not a proposed batch of "
                                f"{camp['name']!r}")
        old = store.batch_candidates(keep_selected_of)
        exclude = exclude | {_canon(s) for s in old["psmiles"]}
        keep_rows = old[old["selected"] & ~old["rejected"]]
        if len(keep_rows):
            kX = _descriptors_for_psmiles(store, pool, list(keep_rows["psmiles"]),
                                          list(keep_rows["key"]))
            ok = np.all(np.isfinite(kX), axis=1)
            km = np.full((len(kX), 2), np.nan)
            ks = np.full((len(kX), 2), np.nan)
            if ok.any():
                km[ok], ks[ok] = sur.predict(kX[ok])
            k_ehvi = np.full(len(kX), np.nan)
            if ok.any():
                k_ehvi[ok] = ehvi_2d(km[ok], ks[ok], front, ref)
            k_pb = np.full(len(kX), np.nan)
            if ok.any():
                k_pb[ok] = p_beyond_of(km[ok], ks[ok])
            for j, r in enumerate(keep_rows.itertuples()):
                kept.append({"psmiles": r.psmiles, "key": r.key, "name": r.name,
                             "pool_id": r.pool_id, "source": r.source,
                             "pred_mean": {o[c]: _f(km[j, c]) for c in range(2)},
                             "pred_std": {o[c]: _f(ks[j, c]) for c in range(2)},
                             "ehvi": _f(k_ehvi[j]), "p_beyond": _f(k_pb[j])})
            front_sel = np.vstack([front, km[ok]]) if ok.any() else front
    # pending-aware: queued/running calculations enter the front as fantasies (posterior means)
    pend = store.calculations(camp["id"], status=(CalcState.QUEUED, CalcState.RUNNING))
    n_fant = 0
    if len(pend):
        pX = _descriptors_for_psmiles(store, pool, list(pend["psmiles"]), list(pend["key"]))
        ok = np.all(np.isfinite(pX), axis=1)
        if ok.any():
            front_sel = np.vstack([front_sel, sur.predict(pX[ok])[0]])
            n_fant = int(ok.sum())
    available = np.array([c not in exclude for c in pool.psmiles], dtype=bool) & finite
    q_new = q - len(kept)
    # duplicates in the pool (same polymer twice) would break select_batch: keep the first
    _, first = np.unique(np.asarray(pool.psmiles), return_index=True)
    idx = np.sort(first)
    idx = idx[finite[idx]]
    cands = list(kept)
    sel = None
    if q_new > 0:
        if not available.any():
            if not kept:
                raise ProposalError("every pool candidate is evaluated, pending, rejected "
                                    "or failed in the last cycle")
        else:
            cross = sur.cross_cov_fn(pool.X[idx]) if strategy == Strategy.BELIEVER else None
            sel = select_batch(mean[idx], std[idx], front_sel, ref, q_new, strategy=strategy,
                               candidate_keys=[pool.psmiles[i] for i in idx],
                               exclude_keys=exclude, cross_cov=cross, seed=seed)
    ehvi_all = np.full(len(mean), np.nan)
    ehvi_all[finite] = ehvi_2d(mean[finite], std[finite], front, ref)
    p_beyond = np.full(len(mean), np.nan)
    p_beyond[finite] = p_beyond_of(mean[finite], std[finite])
    if sel is not None:
        for rank, i in enumerate(idx[sel.indices]):
            cands.append({
                "psmiles": pool.psmiles[i], "key": _key(pool.psmiles[i]), "pool_id": pool.ids[i],
                "source": "acquisition" if pool.source[i] == "pool"
                else f"acquisition:{pool.source[i]}",
                "pred_mean": {o[j]: float(mean[i, j]) for j in range(2)},
                "pred_std": {o[j]: float(std[i, j]) for j in range(2)},
                "ehvi": float(sel.ehvi[rank]), "p_beyond": float(p_beyond[i]),
            })
    if not cands:
        raise ProposalError("nothing to propose")
    # joint value of the whole batch: MC expected hypervolume gain of all its candidates
    cm = np.array([[c["pred_mean"][o[0]], c["pred_mean"][o[1]]] for c in cands], dtype=float)
    cs = np.array([[c["pred_std"][o[0]], c["pred_std"][o[1]]] for c in cands], dtype=float)
    okc = np.all(np.isfinite(cm), axis=1) & np.all(np.isfinite(cs), axis=1)
    joint, joint_se = joint_expected_gain(cm[okc], cs[okc], front, ref, seed=seed)
    info = {"kernel": kernel, "n_observations": int(len(Y)), "n_pool": int(len(pool.psmiles)),
            "n_pool_without_descriptor": int((~finite).sum()),
            "n_observations_without_descriptor": int((~grouped["has_descriptor"]).sum()),
            "n_available": int(available.sum()), "reference_point": cfg.reference_point,
            "n_kept": len(kept), "kept_from_batch": keep_selected_of,
            "n_pending_fantasies": n_fant, "n_failed_excluded": n_failed_excluded,
            "believed_gain": None if sel is None else sel.believed_gain,
            "expected_gain_se": joint_se,
            "ehvi_initial": [] if sel is None else [float(v) for v in sel.ehvi_initial],
            "surrogate": {n: m.info for n, m in sur.models.items()},
            "seconds": round(time.perf_counter() - t0, 3)}
    batch = store.create_batch(camp["id"], cands, strategy=strategy, joint_value=joint,
                               info=info, actor=actor)
    preds = pd.DataFrame({"pool_id": pool.ids, "psmiles": pool.psmiles,
                          f"pred_mean_{o[0]}": mean[:, 0], f"pred_std_{o[0]}": std[:, 0],
                          f"pred_mean_{o[1]}": mean[:, 1], f"pred_std_{o[1]}": std[:, 1],
                          "ehvi": ehvi_all, "p_beyond": p_beyond, "available": available})
    store.save_predictions(camp["id"], int(batch["cycle"]), preds)
    if cfg.auto_approve:
        batch["approval"] = store.approve_batch(batch["id"], actor="auto-approve")
    return batch


def joint_expected_gain(mean: np.ndarray, std: np.ndarray, front: np.ndarray, ref: np.ndarray,
                        *, n_samples: int = 512, seed: int = 0) -> tuple[float, float]:
    """Monte-Carlo E[HV(front ∪ Y_batch)] − HV(front) and its standard error, the batch's
    objectives sampled as independent Gaussians N(mean, std²) (original units)."""
    from core.acquisition import hypervolume_2d  # noqa: PLC0415
    if len(mean) == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    base = hypervolume_2d(front, ref)
    draws = mean[None] + std[None] * rng.standard_normal((n_samples,) + mean.shape)
    gains = np.array([hypervolume_2d(np.vstack([front, d]), ref) - base for d in draws])
    return float(gains.mean()), float(gains.std(ddof=1) / np.sqrt(n_samples))


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
