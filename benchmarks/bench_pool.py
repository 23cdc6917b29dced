"""Benchmark of the virtual polymer pool generator (core.pool / core.pool.ngram).

Prints, for the n-gram trained on the shipped corpus (and, when ../shared/data is present,
on PI1070 for comparison with DESIGN.md's order-8 numbers):

* raw sampling metrics over a fixed number of draws: completed strings per draw, validity
  (valid / completed, core.chem.polymer validation), uniqueness (unique canonical / valid),
  novelty (not in the corpus / unique);
* time to produce N valid, filtered, unique, novel candidates (default 10,000; no
  descriptors; the same procedure and filters as ``python -m core.pool generate``) and the
  descriptor time per polymer (measured on a sample, extrapolated);
* distributions of the candidates vs the corpus: heavy-atom count percentiles, fraction of
  polymers containing each element, mean atoms per unit, fraction with S / sulfonyl /
  thioether, and the same for the shipped pool (assets/pool) when present.

Usage: python benchmarks/bench_pool.py [--n 10000] [--draws 5000] [--no-pi1070]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core import pool  # noqa: E402
from core.chem.polymer import InvalidPolymer, canonical_psmiles, parse_psmiles  # noqa: E402

ELEMENTS = ["C", "N", "O", "F", "S", "Cl", "Br", "I", "P"]
GROUPS = {"S": "[#16]", "sulfonyl": "[#16X4](=O)(=O)", "thioether": "[#16X2]([#6])[#6]",
          "aromatic ring": "a", "F": "[#9]"}


def raw_metrics(model, corpus: set[str], draws: int, seed: int, params: pool.SampleParams):
    """Validity / uniqueness / novelty over ``draws`` sampled strings (no filters)."""
    from core.pool import ngram

    st = ngram.SampleStats()
    t0 = time.perf_counter()
    strings = ngram.sample(model, draws, seed=seed, temperature=params.temperature,
                           backoff=params.backoff, max_tokens=params.max_tokens, stats=st)
    t_sample = time.perf_counter() - t0
    valid = []
    for s in strings:
        try:
            parse_psmiles(s)
            valid.append(canonical_psmiles(s))
        except InvalidPolymer:
            pass
    uniq = set(valid)
    novel = uniq - corpus
    return {"draws": draws, "completed": len(strings), "valid": len(valid),
            "unique": len(uniq), "novel": len(novel), "sample_s": t_sample}


def distribution(psmiles: list[str]) -> dict:
    from rdkit import Chem

    pats = {k: Chem.MolFromSmarts(v) for k, v in GROUPS.items()}
    heavy, counts = [], {e: [] for e in ELEMENTS}
    has = {k: 0 for k in GROUPS}
    for s in psmiles:
        m = parse_psmiles(s)
        syms = [a.GetSymbol() for a in m.GetAtoms() if a.GetAtomicNum() > 1]
        heavy.append(len(syms))
        for e in ELEMENTS:
            counts[e].append(syms.count(e))
        for k, p in pats.items():
            has[k] += m.HasSubstructMatch(p)
    n = len(psmiles)
    h = np.array(heavy)
    return {"n": n, "heavy_p10_50_90": np.percentile(h, [10, 50, 90]).tolist(),
            "heavy_mean": float(h.mean()),
            "frac_with": {e: float(np.mean(np.array(counts[e]) > 0)) for e in ELEMENTS},
            "mean_count": {e: float(np.mean(counts[e])) for e in ELEMENTS},
            "frac_group": {k: v / n for k, v in has.items()}}


def show_dist(label: str, d: dict) -> None:
    p = d["heavy_p10_50_90"]
    print(f"  {label:<22} n={d['n']:>6}  heavy atoms mean {d['heavy_mean']:5.1f} "
          f"(p10/p50/p90 {p[0]:.0f}/{p[1]:.0f}/{p[2]:.0f})")
    print("    with element: " + "  ".join(f"{e} {d['frac_with'][e]:.2f}" for e in ELEMENTS))
    print("    atoms/unit:   " + "  ".join(f"{e} {d['mean_count'][e]:.2f}" for e in ELEMENTS))
    print("    groups:       " + "  ".join(f"{k} {v:.3f}" for k, v in d["frac_group"].items()))


def run(label: str, corpus_paths, use_default: bool, params: pool.ModelParams, n: int,
        draws: int, seed: int) -> list[str]:
    paths = ([pool.CORPUS_PATH] if use_default else []) + list(corpus_paths)
    corpus = pool.load_corpus(paths)
    t0 = time.perf_counter()
    model = pool.train_model(corpus.psmiles, params)
    t_train = time.perf_counter() - t0
    sp = pool.SampleParams()
    r = raw_metrics(model, set(corpus.psmiles), draws, seed, sp)
    print(f"\n== {label}: corpus {len(corpus.psmiles)} polymers, order {params.order}, "
          f"augment {params.n_augment}, {'Kekule' if params.kekule else 'aromatic'}, "
          f"T {sp.temperature}; train {t_train:.2f} s, {model.meta['n_contexts']} contexts")
    print(f"  raw, {draws} draws: completed {r['completed'] / r['draws']:.1%} of draws; "
          f"valid {r['valid'] / max(r['completed'], 1):.1%} of completed; unique "
          f"{r['unique'] / max(r['valid'], 1):.1%} of valid; novel "
          f"{r['novel'] / max(r['unique'], 1):.1%} of unique  (sampling {r['sample_s']:.1f} s)")
    t0 = time.perf_counter()
    envs = pool.corpus_environments(corpus.psmiles)
    cands, st = pool.generate_candidates(model, n, seed=seed, exclude=set(corpus.psmiles),
                                         known_envs=envs)
    dt = time.perf_counter() - t0
    print(f"  {len(cands)} valid+filtered unique novel candidates in {dt:.1f} s "
          f"({st.attempts} draws, {st.completed} completed, {st.valid} valid, "
          f"{st.duplicates} duplicates, {st.in_corpus} in corpus)")
    rej = sorted(((k, v) for k, v in st.rejected.items()), key=lambda kv: -kv[1])[:6]
    print("  rejected: " + ", ".join(f"{k} {v}" for k, v in rej))
    show_dist("corpus", distribution(corpus.psmiles))
    show_dist("generated", distribution(cands))
    return cands


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--draws", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-pi1070", action="store_true")
    ap.add_argument("--n-pi1070", type=int, default=2000,
                    help="candidates to generate in the PI1070 comparison runs")
    ap.add_argument("--descriptor-sample", type=int, default=200)
    args = ap.parse_args()
    cands = run("shipped corpus (assets/polymer_corpus.csv)", [], True, pool.ModelParams(),
                args.n, args.draws, args.seed)
    if args.descriptor_sample:
        from core.chem.descriptors import ff_kernel_mean_batch

        sub = cands[: args.descriptor_sample]
        t0 = time.perf_counter()
        ff_kernel_mean_batch(sub, n_jobs=1)
        per = (time.perf_counter() - t0) / len(sub)
        print(f"  descriptors: {per * 1e3:.1f} ms/polymer on 1 core -> {args.n} in "
              f"~{per * args.n:.0f} s (1 core), ~{per * args.n / 2:.0f} s (2 workers)")
    pi = REPO.parent / "shared" / "data" / "PI1070.csv"
    if not args.no_pi1070 and pi.exists():
        run("PI1070 only, plain order-8 aromatic n-gram (as in DESIGN.md)", [pi], False,
            pool.ModelParams(order=8, n_augment=0, kekule=False), args.n_pi1070, args.draws,
            args.seed)
        run("PI1070 only, shipped parameters", [pi], False,
            pool.ModelParams(), args.n_pi1070, args.draws, args.seed)
    try:
        p = pool.load_default_pool()
    except pool.PoolError as exc:
        print(f"\nno shipped pool: {exc}")
        return 0
    man = p["manifest"]
    print(f"\n== shipped pool assets/pool: {len(p['ids'])} candidates; manifest timings "
          f"{man.get('timings_s')}; counts: draws {man['counts']['attempts']}, valid "
          f"{man['counts']['valid']}, duplicates {man['counts']['duplicates']}")
    show_dist("shipped pool", distribution(p["psmiles"]))
    t0 = time.perf_counter()
    pool._cached_pool.cache_clear()
    pool.load_default_pool()
    t1 = time.perf_counter()
    pool.load_default_pool()
    t2 = time.perf_counter()
    print(f"  load_default_pool: first {1e3 * (t1 - t0):.0f} ms, cached {1e3 * (t2 - t1):.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
