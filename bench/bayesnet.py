"""Bayesian networks beside pgmpy 1.1.0, in the same run (`pip install -e .[bench]`).

    .venv/bin/python -m bench.bayesnet            # asia, alarm (known structure); asia, sachs (structure)

Known structure: N = 5,000 samples from the true network, CPTs fitted by genlab and pgmpy with
the same estimator (BDeu, ess 1), and by genlab with the Jeffreys / Krichevsky-Trofimov prior
Dirichlet(1/2) (``prior=dirichlet, ess=0.5``); KL(true || fitted) exact (sum over families of the expected
conditional KL, parent marginals by variable elimination) and as a held-out Monte-Carlo mean of
``log p_true(x) - log p_fit(x)`` over 20,000 fresh samples. Marginals of alarm with and without
evidence against pgmpy's VariableElimination. Speed: fit, one query, 100,000 samples.
Structure: hill climbing (BIC, in-degree <= 3, tabu 100) from 10,000 samples: SHD to the truth.
"""
from __future__ import annotations

import gzip
import sys
import time

import numpy as np
import pandas as pd
import torch

from bench.common import print_table, write_results
from genlab.pgm.bif import bundled_path, read_bif
from genlab.models.bayesnet import BayesNet
from genlab.pgm import inference as inf
from genlab.pgm import learn


def timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def pgmpy_model(name: str):
    from pgmpy.readwrite import BIFReader
    return BIFReader(string=gzip.decompress(bundled_path(name).read_bytes()).decode()).get_model()


def frame(net, x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({n: np.asarray(net.states[i])[x[:, i]] for i, n in enumerate(net.names)})


def pgmpy_cpts(model, net) -> list[np.ndarray]:
    """pgmpy's CPDs in genlab's layout: (*parents in net order, child), states in net order."""
    out = []
    for i, name in enumerate(net.names):
        cpd = model.get_cpds(name)
        vals = cpd.get_values().reshape([cpd.variable_card, *cpd.cardinality[1:]])
        for ax, v in enumerate(cpd.variables):  # states in the network's order
            order = [cpd.state_names[v].index(s) for s in net.states[net.names.index(v)]]
            vals = np.take(vals, order, axis=ax)
        axes = [cpd.variables.index(net.names[p]) for p in net.parents[i]] + [0]
        out.append(np.transpose(vals, axes))
    return out


def exact_kl(net, cpts: list[np.ndarray]) -> float:
    """KL(P_true || Q) for Q with the same graph: sum_i E_{P(pa_i)} KL(P(X_i|pa) || Q(X_i|pa))."""
    kl = 0.0
    for i, ps in enumerate(net.parents):
        w = inf.query(net.parents, net.cpts, ps) if ps else np.ones(())
        p, q = net.cpts[i], cpts[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0).sum(-1)
        kl += float((w * term).sum())
    return kl


def known_structure(name: str, n: int = 5000, seed: int = 0) -> dict:
    from pgmpy.estimators import BayesianEstimator
    from pgmpy.models import DiscreteBayesianNetwork
    net = read_bif(f"bif:{name}")
    g = torch.Generator().manual_seed(seed)
    x, _ = inf.ancestral_sample(net.parents, net.cpts, n, g)
    test, _ = inf.ancestral_sample(net.parents, net.cpts, 20000, g)
    xt = torch.from_numpy(np.ascontiguousarray(x)).double()
    model, fit_s = timed(lambda: BayesNet.from_network(net, prior="bdeu", ess=1.0).fit_complete(xt), repeat=3)
    df = frame(net, x)
    pg = DiscreteBayesianNetwork([(net.names[p], net.names[i]) for p, i in net.edges()])
    pg.add_nodes_from(net.names)
    states = {n_: list(s) for n_, s in zip(net.names, net.states)}

    def pg_fit():
        m = pg.copy()
        m.fit(df, estimator=BayesianEstimator, prior_type="BDeu", equivalent_sample_size=1.0, state_names=states)
        return m
    pgm, pg_fit_s = timed(pg_fit)
    lp_true = inf.log_prob(net.parents, net.cpts, test)
    held = lp_true - inf.log_prob(model.parents, model.cpts, test)
    pg_c = pgmpy_cpts(pgm, net)
    held_pg = lp_true - inf.log_prob(net.parents, pg_c, test)
    jeffreys = BayesNet.from_network(net, prior="dirichlet", ess=0.5).fit_complete(xt)  # Dirichlet(1/2) (KT)
    held_j = lp_true - inf.log_prob(net.parents, jeffreys.cpts, test)
    return {"task": f"known-structure {name}", "n": n, "kl_exact": exact_kl(net, model.cpts),
            "jeffreys_kl_exact": exact_kl(net, jeffreys.cpts), "jeffreys_kl_heldout": held_j.mean(),
            "kl_heldout": held.mean(), "kl_heldout_se": held.std() / np.sqrt(len(held)),
            "pgmpy_kl_exact": exact_kl(net, pg_c), "pgmpy_kl_heldout": held_pg.mean(),
            "max_cpt_diff_vs_pgmpy": max(float(np.abs(a - b).max()) for a, b in zip(model.cpts, pg_c)),
            "fit_ms": 1e3 * fit_s, "pgmpy_fit_ms": 1e3 * pg_fit_s, "fit_speedup": pg_fit_s / fit_s}


def alarm_inference(seed: int = 0) -> dict:
    from pgmpy.inference import VariableElimination
    from pgmpy.sampling import BayesianModelSampling
    net, pg = read_bif("bif:alarm"), pgmpy_model("alarm")
    model = BayesNet.from_network(net)
    ve = VariableElimination(pg)
    rng = np.random.default_rng(seed)
    row, _ = inf.ancestral_sample(net.parents, net.cpts, 3, torch.Generator().manual_seed(seed))
    evidences = [{}] + [{int(v): int(row[k, v]) for v in rng.choice(37, size=s, replace=False)}
                        for k, s in enumerate((2, 4, 6))]
    worst, count = 0.0, 0
    for ev in evidences:
        ours = model.marginals(ev)
        named = {net.names[v]: net.states[v][s] for v, s in ev.items()}
        for i, name in enumerate(net.names):
            if i in ev:
                continue
            f = ve.query([name], evidence=named or None, show_progress=False)
            theirs = np.array([f.values[f.state_names[name].index(s)] for s in net.states[i]])
            worst = max(worst, float(np.abs(ours[i] - theirs).max()))
            count += 1
    ev = {net.names.index("HRBP"): 0, net.names.index("BP"): 0}
    named = {net.names[v]: net.states[v][s] for v, s in ev.items()}
    _, q_s = timed(lambda: model.query(["HYPOVOLEMIA"], ev), repeat=5)
    _, pq_s = timed(lambda: ve.query(["HYPOVOLEMIA"], evidence=named, show_progress=False), repeat=5)
    g = torch.Generator().manual_seed(seed)
    _, s_s = timed(lambda: model.sample(100_000, generator=g), repeat=2)
    _, ps_s = timed(lambda: BayesianModelSampling(pg).forward_sample(size=100_000, seed=seed, show_progress=False))
    return {"task": "alarm inference", "marginals_compared": count, "max_abs_diff_vs_pgmpy": worst,
            "query_ms": 1e3 * q_s, "pgmpy_query_ms": 1e3 * pq_s, "query_speedup": pq_s / q_s,
            "sample_100k_s": s_s, "pgmpy_sample_100k_s": ps_s, "sample_speedup": ps_s / s_s}


def structure(name: str, n: int = 10000, seed: int = 0) -> dict:
    from pgmpy.estimators import HillClimbSearch
    net = read_bif(f"bif:{name}")
    x, _ = inf.ancestral_sample(net.parents, net.cpts, n, torch.Generator().manual_seed(seed))
    ours, s = timed(lambda: learn.hill_climb(np.ascontiguousarray(x), net.cards, "bic", max_parents=3))
    dag, ps = timed(lambda: HillClimbSearch(frame(net, x)).estimate(scoring_method="bic-d", max_indegree=3,
                                                                     show_progress=False))
    theirs = [[] for _ in net.names]
    for u, v in dag.edges():
        theirs[net.names.index(v)].append(net.names.index(u))
    return {"task": f"structure {name}", "n": n, "true_edges": len(net.edges()),
            "shd": learn.structural_hamming_distance(ours, net.parents), "edges": sum(map(len, ours)),
            "pgmpy_shd": learn.structural_hamming_distance(theirs, net.parents),
            "pgmpy_edges": sum(map(len, theirs)), "seconds": s, "pgmpy_seconds": ps}


def main() -> None:
    torch.set_num_threads(1)
    rows = [known_structure("asia"), known_structure("alarm"), alarm_inference(),
            structure("asia"), structure("sachs")]
    for r in rows:
        print_table([r], list(r))
        print()
    write_results("bayesnet", rows, "python -m bench.bayesnet " + " ".join(sys.argv[1:]), key=("task",))


if __name__ == "__main__":
    main()
