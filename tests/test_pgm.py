"""Graphical models: exact inference against brute force, BIF round trips, parameter and
structure learning, EM, imputation, RBM partition functions (exact and AIS), MRF Gibbs sampling."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import stats

import genlab
from genlab.pgm.bif import Network, format_bif, parse_bif, read_bif, write_bif
from genlab.data.spec import DataSpec, Kind
from genlab.data.tabular import categorical_dataset, discretize, encode_categorical, network_dataset
from genlab.models.bayesnet import BayesNet
from genlab.models.mrf import MRF, MRFConfig
from genlab.models.rbm import RBM, RBMConfig
from genlab.pgm import inference as inf
from genlab.pgm import learn
from genlab.train import TrainConfig, Trainer


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tests run thousands of tiny tensor ops, for which a thread pool only adds waiting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def brute_joint(net: Network) -> tuple[np.ndarray, np.ndarray]:
    """Every joint state (S, D) and its probability (S,), from the chain rule."""
    X = np.array(list(itertools.product(*[range(c) for c in net.cards])))
    return X, np.exp(inf.log_prob(net.parents, net.cpts, X))


def random_network(seed: int, d: int = 6) -> Network:
    rng = np.random.default_rng(seed)
    cards = rng.integers(2, 4, d).tolist()
    parents = [sorted(rng.choice(i, size=min(i, int(rng.integers(0, 3))), replace=False).tolist()) for i in range(d)]
    cpts = [rng.dirichlet(np.ones(cards[i]) * 0.7, size=tuple(cards[p] for p in ps)) for i, ps in enumerate(parents)]
    perm = rng.permutation(d)  # variable order different from a topological order
    inv = np.argsort(perm)
    return Network([f"v{j}" for j in range(d)], [[f"s{k}" for k in range(cards[perm[j]])] for j in range(d)],
                   [[int(inv[p]) for p in parents[perm[j]]] for j in range(d)], [cpts[perm[j]] for j in range(d)]).check()


def check_against_brute_force(net: Network, rng: np.random.Generator) -> None:
    X, p = brute_joint(net)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    for _ in range(4):
        ev_vars = rng.choice(len(net.cards), size=int(rng.integers(0, 3)), replace=False)
        ev = {int(v): int(rng.integers(net.cards[v])) for v in ev_vars}
        sel = np.all([X[:, v] == k for v, k in ev.items()], 0) if ev else np.ones(len(X), bool)
        if p[sel].sum() == 0:
            continue
        for i in range(len(net.cards)):
            if i in ev:
                continue
            want = np.bincount(X[sel, i], weights=p[sel], minlength=net.cards[i]) / p[sel].sum()
            np.testing.assert_allclose(inf.query(net.parents, net.cpts, [i], ev), want, atol=1e-12)
        q = [v for v in range(len(net.cards)) if v not in ev][:2]
        joint = np.zeros([net.cards[v] for v in q])
        np.add.at(joint, tuple(X[sel][:, v] for v in q), p[sel])
        np.testing.assert_allclose(inf.query(net.parents, net.cpts, q, ev), joint / joint.sum(), atol=1e-12)
        assign, prob = inf.map_query(net.parents, net.cpts, None, ev)
        best = np.argmax(np.where(sel, p, -1))
        assert prob == pytest.approx(p[best] / p[sel].sum(), rel=1e-10)
        assert all(X[best, v] == k for v, k in assign.items()) or p[np.all([X[:, v] == k for v, k in {**assign, **ev}.items()], 0)].max() == pytest.approx(p[best])


def test_variable_elimination_equals_brute_force_on_asia():
    check_against_brute_force(read_bif("bif:asia"), np.random.default_rng(0))


@pytest.mark.parametrize("seed", range(5))
def test_variable_elimination_equals_brute_force_on_random_networks(seed):
    check_against_brute_force(random_network(seed), np.random.default_rng(seed))


def test_bif_written_and_read_back_is_the_same_network(tmp_path):
    for net in (read_bif("bif:asia"), read_bif("bif:sachs"), random_network(3)):
        for name in ("net.bif", "net.bif.gz"):
            write_bif(net, tmp_path / name)
            back = read_bif(tmp_path / name)
            assert back.names == net.names and back.states == net.states and back.parents == net.parents
            assert all(np.array_equal(a, b) for a, b in zip(back.cpts, net.cpts))
    with pytest.raises(ValueError, match="undeclared parent"):
        parse_bif("variable a { type discrete [ 2 ] { x, y }; }\nprobability ( a | b ) { (x) 0.5, 0.5; }")
    with pytest.raises(FileNotFoundError, match="no bundled network"):
        read_bif("bif:nonesuch")
    assert "table" in format_bif(read_bif("bif:asia"))


def test_mle_parameters_equal_the_counts():
    net = read_bif("bif:asia")
    x, _ = inf.ancestral_sample(net.parents, net.cpts, 3000, torch.Generator().manual_seed(0))
    model = BayesNet.from_network(net, prior="mle").fit_complete(x)
    for i, ps in enumerate(net.parents):
        counts = np.zeros(model.cpts[i].shape)
        for row in x:  # a plain loop: independent of the vectorized bincount
            counts[tuple(row[p] for p in ps) + (row[i],)] += 1
        np.testing.assert_allclose(model.cpts[i], counts / counts.sum(-1, keepdims=True), rtol=0, atol=1e-15)
    lp = model.log_prob(torch.from_numpy(x[:50]).double())
    np.testing.assert_allclose(lp.numpy(), inf.log_prob(model.parents, model.cpts, x[:50]))
    bdeu = learn.estimate_cpt(np.array([[3.0, 1.0], [0.0, 0.0]]), "bdeu", ess=4.0)
    np.testing.assert_allclose(bdeu, [[4 / 6, 2 / 6], [0.5, 0.5]])  # alpha = ess / (q r) = 1


def test_samplers_match_exact_inference():
    model = BayesNet.from_network("bif:asia")
    g = torch.Generator().manual_seed(1)
    x = model.sample(20000, generator=g).long().numpy()
    for i, m in enumerate(model.marginals()):
        obs = np.bincount(x[:, i], minlength=2)
        assert stats.chisquare(obs[m > 0], 20000 * m[m > 0]).pvalue > 1e-3
    ev = {"dysp": "yes", "smoke": "no"}
    exact = model.query(["lung"], ev)
    xs, _ = model.sample_given(4000, ev, "rejection", generator=g)
    assert (xs[:, 2] == 1).all() and (xs[:, 7] == 0).all()
    assert stats.chisquare(np.bincount(xs[:, 3].long(), minlength=2), 4000 * exact).pvalue > 1e-3
    xw, w = model.sample_given(20000, ev, "likelihood", generator=g)
    est = np.bincount(xw[:, 3].long().numpy(), weights=w.numpy(), minlength=2)
    np.testing.assert_allclose(est, exact, atol=0.02)


def test_em_and_imputation():
    truth = BayesNet.from_network("bif:asia")
    g = torch.Generator().manual_seed(2)
    x = truth.sample(4000, generator=g)
    missing = torch.rand(x.shape, generator=g) < 0.2
    model = BayesNet.from_network("bif:asia", prior="dirichlet", ess=0.01)
    history = model.fit_em(x, missing, iters=15)
    assert all(b >= a - 1e-6 * abs(a) for a, b in zip(history, history[1:])), history
    for a, b in zip(model.cpts, truth.cpts):
        assert np.abs(a - b).max() < 0.15
    # mode imputation is the brute-force posterior mode of the missing entries
    X, p = brute_joint(truth.network())
    row, miss = x[:1].clone(), torch.tensor([[True, False, True, True, False, False, False, True]])
    filled = truth.impute(row, miss).long().numpy()[0]
    sel = np.all([X[:, j] == int(row[0, j]) for j in range(8) if not miss[0, j]], 0)
    assert (X[np.argmax(np.where(sel, p, -1))] == filled).all()
    draws = torch.cat([truth.impute(row, miss, "sample", generator=g) for _ in range(300)])
    assert (draws[:, ~miss[0]] == row[:, ~miss[0]]).all()
    post = truth.query(["lung"], {j: int(row[0, j]) for j in range(8) if not miss[0, j]})
    assert abs(float((draws[:, 3] == 0).double().mean()) - post[0]) < 0.1


def test_structure_learning():
    rng = np.random.default_rng(0)  # a chain 0 -> 1 -> 2 -> 3 with strong dependence
    x = np.zeros((3000, 4), np.int64)
    x[:, 0] = rng.integers(0, 2, 3000)
    for j in range(1, 4):
        x[:, j] = np.where(rng.random(3000) < 0.9, x[:, j - 1], 1 - x[:, j - 1])
    tree = learn.chow_liu(x, [2] * 4)
    skeleton = {frozenset((p, i)) for i, ps in enumerate(tree) for p in ps}
    assert skeleton == {frozenset((0, 1)), frozenset((1, 2)), frozenset((2, 3))}
    for score in ("bic", "bdeu"):
        hc = learn.hill_climb(x, [2] * 4, score, max_parents=1)
        assert {frozenset((p, i)) for i, ps in enumerate(hc) for p in ps} == skeleton
        assert max(map(len, hc)) <= 1
    assert learn.structural_hamming_distance([[], [0]], [[1], []]) == 1
    assert learn.structural_hamming_distance([[], [0], []], [[], [], [1]]) == 2


def test_tabular_categorical_data():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": ["x", "y", "x", "z"], "b": pd.Categorical(["lo", "hi", "hi", "lo"], ["lo", "hi"]),
                       "c": [1, 0, 1, 1]})
    ds, states = categorical_dataset(df, label="c")
    assert ds.spec.cardinalities == (3, 2) and ds.spec.levels == 3 and ds.spec.kind is Kind.CATEGORICAL
    assert states == [["x", "y", "z"], ["lo", "hi"]] and ds.y.tolist() == [1, 0, 1, 1]
    assert DataSpec.from_dict(ds.spec.to_dict()) == ds.spec
    codes, _, _ = encode_categorical(np.array([["a", None], ["b", "c"]], dtype=object))
    assert codes.tolist() == [[0, -1], [1, 0]]
    assert discretize(np.arange(10.0)[:, None], bins=2)[0].ravel().tolist() == [0] * 5 + [1] * 5
    model = BayesNet(ds.spec)
    with pytest.raises(ValueError, match="column 1"):
        model.log_prob(torch.tensor([[0.0, 2.0]]))
    ds2 = network_dataset("bif:sachs", 500)
    fitted = BayesNet(ds2.spec, genlab.models.bayesnet.BayesNetConfig(structure="hill-climb", max_parents=2)).fit_complete(ds2.x)
    assert max(map(len, fitted.parents)) <= 2 and torch.isfinite(fitted.log_prob(ds2.x)).all()


def small_rbm(gaussian: bool, seed: int = 0) -> RBM:
    torch.manual_seed(seed)
    spec = DataSpec((6,)) if gaussian else DataSpec((6,), Kind.BINARY)
    m = RBM(spec, RBMConfig(hidden=5)).double()
    with torch.no_grad():
        m.W.normal_(0, 0.4 if gaussian else 1.0), m.b.normal_(), m.c.normal_()
        m.base.copy_(m.b)
    return m


def test_rbm_exact_log_z_and_ais_converges_to_it():
    m = small_rbm(gaussian=False)
    V = torch.tensor(list(itertools.product([0.0, 1.0], repeat=6)), dtype=torch.float64)
    with torch.no_grad():
        assert m.log_z_exact() == pytest.approx(float(torch.logsumexp(-m.free_energy(V), 0)), abs=1e-10)
    lp, how = m.log_prob_estimate(V)
    assert how == "exact" and float(lp.exp().sum()) == pytest.approx(1.0, abs=1e-10)
    with pytest.raises(genlab.NotSupported, match="density"):
        m.log_prob(V)
    exact = m.log_z_exact()
    runs = [m.log_partition("ais", steps=k, chains=100, generator=torch.Generator().manual_seed(k))[0]
            for k in (5, 50, 500)]
    assert runs[0].stderr > runs[1].stderr > runs[2].stderr, runs  # the weights' spread shrinks
    assert abs(runs[2].value - exact) < max(0.05, 4 * runs[2].stderr), (runs, exact)
    g = small_rbm(gaussian=True)  # Gaussian visible: exact log Z against 1-D quadrature per h-config
    est, _ = g.log_partition("ais", steps=300, chains=100, generator=torch.Generator().manual_seed(0))
    assert abs(est.value - g.log_z_exact()) < max(0.05, 4 * est.stderr)


def test_level_rbm_is_a_distribution_over_the_levels_with_exact_and_ais_log_z(tmp_path):
    torch.manual_seed(0)
    m = RBM(DataSpec((4,), Kind.DISCRETE, levels=5), RBMConfig(hidden=5, sample_steps=50)).double()
    assert m.units == "levels" and m.b.shape == (4, 5)  # visible="auto" on grey levels
    with torch.no_grad():
        m.W.normal_(0, 1.5), m.b.normal_(), m.c.normal_()
        m.base.copy_(m.b)
    V = torch.tensor(list(itertools.product(range(5), repeat=4)), dtype=torch.float64)
    lp, how = m.log_prob_estimate(V)  # exact log Z: enumeration of h, against enumeration of v
    assert how == "exact" and float(torch.logsumexp(lp, 0)) == pytest.approx(0.0, abs=1e-10)
    ais, _ = m.log_partition("ais", steps=1000, chains=200, generator=torch.Generator().manual_seed(0))
    assert abs(ais.value - m.log_z_exact()) < max(0.02, 4 * ais.stderr) and ais.stderr < 0.01
    x = m.sample(4000, generator=torch.Generator().manual_seed(1))  # Gibbs draws are levels 0..4
    assert torch.equal(x, x.round()) and x.min() >= 0 and x.max() <= 4
    idx = (x.long() * torch.tensor([125, 25, 5, 1])).sum(1)
    obs, exp = torch.bincount(idx, minlength=625).double(), 4000 * lp.exp()
    big = exp >= 5  # pool small cells so that the chi-square approximation holds
    o = torch.cat([obs[big], obs[~big].sum()[None]]).numpy()
    e = torch.cat([exp[big], exp[~big].sum()[None]]).numpy()
    assert stats.chisquare(o, e).pvalue > 1e-3


def test_rbm_saved_when_auto_meant_gaussian_on_levels_still_loads(tmp_path):
    spec = DataSpec((4,), Kind.DISCRETE, levels=5)
    x = torch.randint(0, 5, (50, 4)).float()
    old = RBM(spec, RBMConfig(hidden=3, visible="gaussian"))
    old.setup(x)
    genlab.save(old, tmp_path)
    from genlab import io
    cfg = io.read_json(tmp_path / "config.json")
    cfg["config"]["visible"] = "auto"  # what such a run recorded
    io.write_json(tmp_path / "config.json", cfg)
    (tmp_path / "manifest.json").unlink()  # such runs were written before manifests
    back = genlab.load(tmp_path)
    assert back.units == "gaussian" and back.config.visible == "auto"
    torch.testing.assert_close(back.energy(x), old.energy(x), rtol=0, atol=0)


def test_mrf_gibbs_samples_match_exact_marginals():
    torch.manual_seed(0)
    m = MRF(DataSpec((4,), Kind.CATEGORICAL, levels=3), MRFConfig(sample_steps=20)).double()
    with torch.no_grad():
        m.theta.normal_(0, 0.5), m.J_raw.normal_(0, 0.7)
    states = m.all_states()
    p = m.log_prob_exact(states.double()).exp()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-12)
    x = m.sample(3000, generator=torch.Generator().manual_seed(1)).long()
    idx = (x * torch.tensor([27, 9, 3, 1])).sum(1)  # row-major index, as all_states
    obs, exp = torch.bincount(idx, minlength=81).double(), 3000 * p
    big = exp >= 5  # pool small cells so that the chi-square approximation holds
    o = torch.cat([obs[big], obs[~big].sum()[None]]).numpy()
    e = torch.cat([exp[big], exp[~big].sum()[None]]).numpy()
    assert stats.chisquare(o, e).pvalue > 1e-3
    for i in range(4):  # and each single-site marginal
        marg = torch.zeros(3, dtype=torch.float64).index_add_(0, states[:, i], p)
        assert stats.chisquare(torch.bincount(x[:, i], minlength=3).numpy(), (3000 * marg).numpy()).pvalue > 1e-3


def test_mrf_pseudo_likelihood_recovers_a_coupling():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 2000)
    b = np.where(rng.random(2000) < 0.85, a, 1 - a)  # strongly coupled pair
    c = rng.integers(0, 2, 2000)  # independent
    model = MRF(DataSpec((3,), Kind.BINARY), MRFConfig(l2=1e-4))
    cfg = TrainConfig(epochs=150, batch_size=2000, lr=0.05, patience=None, progress=False, device="cpu")
    Trainer(model, cfg).fit(torch.from_numpy(np.stack([a, b, c], 1)).float())
    est = type("fitted", (), {"model_": model})
    J = est.model_.couplings().detach()
    strength = lambda i, j: float(J[i, j, 0, 0] + J[i, j, 1, 1] - J[i, j, 0, 1] - J[i, j, 1, 0])  # noqa: E731
    assert strength(0, 1) > 2.0 and abs(strength(0, 2)) < 0.5


def test_rbm_auto_units_follow_the_data_kind_and_number_of_levels():
    from genlab import DataSpec, make

    assert make("rbm", DataSpec((1, 8, 8), kind="discrete", levels=17), hidden=4).units == "levels"
    assert make("rbm", DataSpec((1, 4, 4), kind="discrete", levels=256), hidden=4).units == "gaussian"
    assert make("rbm", DataSpec((6,), kind="binary"), hidden=4).units == "bernoulli"
    assert make("rbm", DataSpec((2,)), hidden=4).units == "gaussian"
    assert make("rbm", DataSpec((1, 4, 4), kind="discrete", levels=256), hidden=4, visible="levels").units == "levels"
