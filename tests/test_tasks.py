"""Tasks (genlab/tasks): generative classification, outliers, imputation, interpolation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone

import genlab
from genlab.protocol import NotSupported
from genlab.estimators import GenerativeClassifier


def _blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([3, 7], n // 2)                      # labels need not be 0..K-1
    X = rng.normal(size=(n, 2)) * 0.3 + np.where(y[:, None] == 3, -2.0, 2.0)
    return X, y


def test_classifier_separable_classes_and_proba():
    X, y = _blobs()
    clf = GenerativeClassifier("gaussian").fit(X, y)
    assert clf.score(X, y) == 1.0
    p = clf.predict_proba(X)
    assert p.shape == (len(X), 2)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-9)
    assert set(clf.predict(X)) == {3, 7}


def test_classifier_bayes_rule_matches_class_densities_and_priors():
    X, y = _blobs()
    clf = GenerativeClassifier("gaussian", priors=[0.2, 0.8]).fit(X, y)
    ll = clf.class_log_likelihood(X[:5])
    joint = ll + np.log([0.2, 0.8])
    expect = np.exp(joint - np.logaddexp(joint[:, :1], joint[:, 1:]))
    np.testing.assert_allclose(clf.predict_proba(X[:5]), expect, rtol=1e-6)
    # a per-class model is the family fitted on that class alone
    est = genlab.Estimator("gaussian").fit(X[y == 3])
    np.testing.assert_allclose(ll[:, 0], est.score_samples(X[:5]), rtol=1e-5)


def test_classifier_conditional_family_uses_one_model():
    X, y = _blobs(seed=1)
    clf = GenerativeClassifier("maf", n_layers=2, hidden=16, depth=1, epochs=6, batch_size=32, seed=0).fit(X, y)
    assert clf.conditional_ and len(clf.models_) == 1
    assert clf.score(X, y) > 0.95


def test_classifier_clone_and_params():
    clf = GenerativeClassifier("gmm", n_components=2, priors="uniform")
    c2 = clone(clf)
    assert c2.get_params() == clf.get_params()
    c2.set_params(n_components=3)
    assert c2.n_components == 3 and clf.n_components == 2


def test_classifier_not_supported_without_likelihood():
    X, y = _blobs()
    with pytest.raises(NotSupported, match="likelihood"):
        GenerativeClassifier("gan").fit(X, y)
    with pytest.raises(NotSupported, match="not Conditional"):
        GenerativeClassifier("gaussian", conditional=True).fit(X, y)
    with pytest.raises(ValueError, match="priors"):
        GenerativeClassifier("gaussian", priors=[0.5, 0.6]).fit(X, y)


# -- outliers -------------------------------------------------------------------------------------
from genlab.tasks import outliers as O  # noqa: E402


def _gaussian_model(X):
    return genlab.Estimator("gaussian", val_fraction=0.0).fit(X).model_


def test_typicality_flags_the_mode_that_the_likelihood_calls_typical():
    """In D = 50 a standard normal's mode (the origin) has the highest density, yet no sample is
    near it: the raw likelihood calls it the most normal point, the typicality test an outlier."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(4000, 50, generator=g, dtype=torch.float64)
    model = _gaussian_model(X.numpy())
    held = torch.randn(1000, 50, generator=g, dtype=torch.float64)
    nll_h = O.nll_scores(model, held)
    nll_0 = O.nll_scores(model, torch.zeros(1, 50))
    assert nll_0 < nll_h.min()                                  # likelihood: "most normal"
    typ_h = O.typicality_scores(nll_h, nll_h)
    assert O.typicality_scores(nll_0, nll_h) > O.threshold_at_fpr(typ_h, 0.01)
    # H estimates the entropy of N(0, I_50): D/2 log(2 pi e)
    assert abs(float(nll_h.mean()) - 25 * math.log(2 * math.pi * math.e)) < 0.5


def test_likelihood_ratio_matches_closed_form():
    """Model N(0, I), background N(0, 9 I) in 2-D: the ratio score is
    |x|^2 / 2 (1 - 1/9) - D log 3."""
    g = torch.Generator().manual_seed(1)
    model = _gaussian_model(torch.randn(20000, 2, generator=g, dtype=torch.float64).numpy())
    bg = _gaussian_model(3 * torch.randn(20000, 2, generator=g, dtype=torch.float64).numpy())
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0], [4.0, -3.0]])
    s = O.likelihood_ratio_scores(O.nll_scores(model, x), O.nll_scores(bg, x))
    expect = (x.double() ** 2).sum(1) / 2 * (1 - 1 / 9) - 2 * math.log(3)
    torch.testing.assert_close(s, expect, atol=0.1, rtol=0.03)


def test_complexity_threshold_and_metrics():
    g = torch.Generator().manual_seed(2)
    flat = torch.full((4, 1, 8, 8), 3.0)
    noisy = torch.randint(0, 17, (4, 1, 8, 8), generator=g).float()
    for c in O.COMPRESSORS:
        assert (O.compressed_bits(flat, 17, c) < O.compressed_bits(noisy, 17, c)).all()
    # the correction subtracts L(x)/D bits per dimension from -log2 p(x)/D
    nll = torch.full((4,), 64 * math.log(2) * 5.0, dtype=torch.float64)   # 5 bits/dim
    torch.testing.assert_close(O.complexity_scores(nll, noisy, 64, 17, "zlib"),
                               5.0 - O.compressed_bits(noisy, 17, "zlib") / 64)
    s = torch.arange(1000, dtype=torch.float64)
    assert float((s > O.threshold_at_fpr(s, 0.05)).double().mean()) == pytest.approx(0.05, abs=0.002)
    m = O.detection_metrics(torch.zeros(5), torch.ones(5))
    assert m == {"auroc": 1.0, "aupr": 1.0}
    assert O.detection_metrics(torch.ones(5), torch.zeros(5))["auroc"] == 0.0
    p = O.perturb(torch.zeros(2000), 0.5, 4, torch.Generator().manual_seed(0))
    assert abs(float((p != 0).double().mean()) - 0.5 * 3 / 4) < 0.04


def test_outliers_not_supported_without_density_or_energy():
    from genlab import make
    from genlab.data import load_dataset
    model = make("gan", load_dataset("moons", n=64).spec, seed=0, hidden=8, latent_dim=2)
    with pytest.raises(NotSupported, match="cannot score outliers"):
        O.nll_scores(model, torch.zeros(3, 2))


# -- imputation -----------------------------------------------------------------------------------
from genlab.tasks import impute as I  # noqa: E402

_COV = torch.tensor([[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 2.0]], dtype=torch.float64)


def _correlated(n, seed, cov=_COV, mean=(1.0, -1.0, 0.5)):
    g = torch.Generator().manual_seed(seed)
    return (torch.tensor(mean, dtype=torch.float64) + torch.randn(n, len(cov), generator=g, dtype=torch.float64)
            @ torch.linalg.cholesky(cov).T)


def test_conditional_gaussian_is_the_closed_form():
    mean = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    obs = torch.tensor([True, False, True])
    z_o = torch.tensor([2.0, 0.0], dtype=torch.float64)
    mu, sig, ll = I.conditional_gaussian(mean, _COV, z_o, obs)
    S_oo = _COV[[0, 2]][:, [0, 2]]
    S_mo = _COV[[1]][:, [0, 2]]
    torch.testing.assert_close(mu, mean[[1]] + S_mo @ torch.linalg.solve(S_oo, z_o - mean[[0, 2]]))
    torch.testing.assert_close(sig, _COV[[1]][:, [1]] - S_mo @ torch.linalg.solve(S_oo, S_mo.T))
    ref = torch.distributions.MultivariateNormal(mean[[0, 2]], S_oo).log_prob(z_o)
    torch.testing.assert_close(ll, ref)


def test_exact_gaussian_imputation_draws_match_the_conditional():
    model = _gaussian_model(_correlated(20000, 0).numpy())
    x = torch.tensor([[2.0, 0.0, 1.0]]).repeat(4000, 1)
    mask = torch.tensor([False, True, False]).repeat(4000, 1)
    d = I.impute(model, x, mask, n_draws=1, generator=torch.Generator().manual_seed(0))[0].double()
    assert torch.equal(d[:, [0, 2]], x[:, [0, 2]].double())               # observed kept
    cov = model.pre.std.double()[:, None] * (model.scale_tril.double() @ model.scale_tril.double().T) \
        * model.pre.std.double()[None]
    mu, sig, _ = I.conditional_gaussian(model.pre.mean.double() + model.pre.std.double() * model.mean.double(),
                                        cov, torch.tensor([2.0, 1.0], dtype=torch.float64), ~mask[0])
    assert abs(float(d[:, 1].mean() - mu[0])) < 0.03
    assert abs(float(d[:, 1].var() / sig[0, 0]) - 1) < 0.08


def test_gmm_conditional_responsibilities():
    """Two well-separated components: observing x0 near one component's mean picks it."""
    g = torch.Generator().manual_seed(3)
    a = _correlated(3000, 1, mean=(-4.0, -4.0, 0.0))
    b = _correlated(3000, 2, mean=(4.0, 4.0, 0.0))
    model = genlab.Estimator("gmm", n_components=2, val_fraction=0.0).fit(torch.cat([a, b]).numpy()).model_
    x = torch.tensor([[-4.0, 0.0, 0.0], [4.0, 0.0, 0.0]]).repeat(500, 1)
    mask = torch.tensor([False, True, True]).repeat(1000, 1)
    d = I.impute(model, x, mask, n_draws=1, generator=g)[0]
    assert (d[0::2, 1] < 0).float().mean() > 0.99 and (d[1::2, 1] > 0).float().mean() > 0.99
    # with x0 half way, the responsibilities are about equal: both modes appear
    mid = I.impute(model, torch.zeros(2000, 3), mask.repeat(2, 1), n_draws=1, generator=g)[0]
    assert 0.3 < float((mid[:, 1] > 0).float().mean()) < 0.7


def test_mcmc_imputation_matches_the_gaussian_conditional():
    cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
    model = _gaussian_model(_correlated(20000, 4, cov=cov, mean=(0.0, 0.0)).numpy())
    x = torch.tensor([[1.0, 0.0]]).repeat(600, 1)
    mask = torch.tensor([False, True]).repeat(600, 1)
    d = I.impute(model, x, mask, n_draws=1, generator=torch.Generator().manual_seed(5), method="mcmc",
                 sweeps=60)[0, :, 1].double()
    assert abs(float(d.mean()) - 0.8) < 0.06            # E[x1 | x0 = 1] = rho
    assert abs(float(d.var()) - 0.36) < 0.07            # Var = 1 - rho^2


def test_imputation_methods_and_not_supported():
    from genlab import make
    from genlab.data import load_dataset
    spec = load_dataset("moons", n=64).spec
    assert I.method_for(make("vae", spec, seed=0, hidden=8, latent_dim=2)) == "mwg"
    made = make("made", spec, seed=0, hidden=8, n_orders=1)
    assert I.method_for(made, torch.tensor([[True, False]])) == "mcmc"        # missing first in the order
    assert I.method_for(made, torch.tensor([[False, True]])) == "ancestral"
    with pytest.raises(NotSupported, match="no latent space"):
        I.method_for(make("cgan", load_dataset("digits", n=64).spec, seed=0, hidden=8, latent_dim=2))
    with pytest.raises(ValueError, match="mask must have the shape"):
        I.impute(make("gaussian", spec, seed=0), torch.zeros(3, 2), torch.zeros(3, 1, dtype=torch.bool))


# -- interpolation --------------------------------------------------------------------------------
from genlab.tasks import interpolate as L  # noqa: E402


def test_slerp_endpoints_norms_and_lerp():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(16, generator=g, dtype=torch.float64), torch.randn(16, generator=g, dtype=torch.float64)
    z1 = z1 / z1.norm() * z0.norm()
    p = L.slerp(z0, z1, 9)
    torch.testing.assert_close(p[0], z0)
    torch.testing.assert_close(p[-1], z1)
    torch.testing.assert_close(p.norm(dim=1), torch.full((9,), float(z0.norm()), dtype=torch.float64))
    angles = torch.arccos((p[:-1] * p[1:]).sum(1) / p[:-1].norm(dim=1) / p[1:].norm(dim=1))
    torch.testing.assert_close(angles, angles.mean().expand(8))        # constant angular speed
    assert L.lerp(z0, z1, 9)[4].norm() < z0.norm()                      # the chord cuts inside
    torch.testing.assert_close(L.slerp(z0, 2 * z0, 3), L.lerp(z0, 2 * z0, 3))  # parallel: lerp


def test_interpolation_and_attribute_on_a_latent_model(digits):
    from genlab import make
    model = make("ae", digits.spec, seed=0, hidden=16, latent_dim=2).eval()
    model.setup(digits.x)
    x = digits.x[:4]
    rows = L.interpolate(model, x[:2], x[2:4], steps=5, kind="lerp")
    assert rows.shape == (2, 5, *digits.spec.event_shape)
    z = model.encode(x)
    torch.testing.assert_close(rows[:, 0], model.decode(z[:2]).reshape(2, *digits.spec.event_shape))
    v = L.attribute_vector(model, digits.x, digits.y, 1, 0)
    zz = model.encode(digits.x)
    torch.testing.assert_close(v, zz[digits.y == 1].mean(0) - zz[digits.y == 0].mean(0))
    out = L.apply_attribute(model, x[:1], v, [0.0, 1.0])
    torch.testing.assert_close(out[0, 1], model.decode(z[:1] + v)[0])
    gauss = make("gaussian", digits.spec, seed=0)
    with pytest.raises(NotSupported, match="no latent space"):
        L.interpolate(gauss, x[:1], x[1:2])


def test_a_gan_decodes_paths_between_codes_without_an_encoder():
    """GAN is a `Decoder`, not a `Latent` family: paths between noise vectors decode, examples
    cannot be encoded, and every refusal names the families that can."""
    from genlab.protocol import Decoder, Latent
    from genlab.data import DataSpec
    gan = genlab.make("gan", DataSpec((2,)), seed=0, hidden=8, latent_dim=3).eval()
    assert isinstance(gan, Decoder) and not isinstance(gan, Latent)
    z0, z1 = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    path = L.decode_path(gan, z0, z1, steps=5, kind="lerp")
    assert path.shape == (5, 2)
    torch.testing.assert_close(path[[0, -1]], gan.decode(torch.stack([z0, z1])))
    torch.testing.assert_close(path[2], gan.decode((z0 + z1)[None] / 2)[0])
    with pytest.raises(NotSupported, match="no latent space.*vae"):
        L.interpolate(gan, torch.zeros(1, 2), torch.ones(1, 2))
    with pytest.raises(NotSupported, match="no latent space; decode_path"):
        L.decode_path(genlab.make("gaussian", DataSpec((2,)), seed=0), z0, z1)
    est = genlab.Estimator("gan", epochs=1, hidden=8, latent_dim=3).fit(np.random.default_rng(0).normal(size=(64, 2)))
    with pytest.raises(NotSupported, match="no encoder into its latent space.*vae"):
        est.transform(np.zeros((2, 2)))
    assert est.inverse_transform(np.zeros((4, 3))).shape == (4, 2)


def test_every_family_refuses_the_data_kinds_it_does_not_declare():
    """One check in GenerativeModel.__init__, from the class's ``data_kinds``: the message names the
    family, the kind, the kinds it models and the families that model this kind (from the registry)."""
    from genlab.data import DataSpec, Kind
    from genlab.registry import families, get_family, make
    refused = 0
    for name in families():
        cls = get_family(name)
        assert cls.data_kinds and cls.data_kinds <= set(Kind), name
        for kind in set(Kind) - cls.data_kinds:
            spec = DataSpec((1, 4, 4), kind, levels=None if kind is Kind.CONTINUOUS else 3, num_classes=2)
            with pytest.raises(NotSupported) as e:
                make(name, spec)
            msg = str(e.value)
            ok = sorted(f for f in families() if kind in get_family(f).data_kinds)
            assert msg.startswith(f"{name} does not model {kind.value} data"), msg
            assert msg.endswith(", ".join(ok)) and all(k.value in msg for k in cls.data_kinds), msg
            refused += 1
    assert refused >= 20  # flows, diffusion, GANs, energies and VAEs refuse categorical / text; PGMs continuous


def test_capabilities_and_density_do_not_change_per_instance():
    """What `genlab list` shows for a class is what each instance offers: no instance overrides
    ``density``, ``sampling`` or ``data_kinds`` (variational dequantization reports its bound
    through the preprocessing, ``pre.lower_bound``, as uniform dequantization does)."""
    from genlab.data import DataSpec, Kind
    from genlab.registry import make
    spec = DataSpec((4,), Kind.DISCRETE, levels=5)
    for name, cfg in (("glow", {"dequantization": "variational"}), ("realnvp", {}),
                      ("nsf", {"transform": "autoregressive"}), ("nsf", {"transform": "coupling"})):
        model = make(name, spec, **cfg)
        assert not {"density", "sampling", "data_kinds"} & set(vars(model)), name
        assert model.density is type(model).density is genlab.Density.EXACT
        assert model.pre.lower_bound  # dequantized discrete data: log_prob is a bound in data space


# -- command line, end to end ---------------------------------------------------------------------
def test_cli_task_commands_end_to_end(tmp_path, capsys):
    from genlab.cli import main
    run = tmp_path / "run"
    assert main(["train", "gaussian", "--data", "digits", "--out", str(run)]) == 0
    assert main(["outliers", str(run), "--data", "digits", "-n", "40", "--out", str(tmp_path / "s.csv")]) == 0
    text = capsys.readouterr().out
    assert "typicality" in text and "complexity" in text and "ratio" in text
    assert (tmp_path / "s.csv").read_text().startswith("nll,typicality,ratio,complexity")
    assert main(["impute", str(run), "--data", "digits", "-n", "30", "--mask", "mcar:0.3",
                 "--draws", "2", "--out", str(tmp_path / "d.npy")]) == 0
    d = np.load(tmp_path / "d.npy")
    assert d.shape == (2, 30, 1, 8, 8) and "exact-gaussian" in capsys.readouterr().out
    assert main(["interpolate", str(run), "--out", str(tmp_path / "i.png")]) == 2   # not Latent
    assert "no latent space" in capsys.readouterr().err
    vae = tmp_path / "vae"
    assert main(["train", "vae", "--data", "digits", "--epochs", "1", "--set", "hidden=16", "--set", "latent_dim=2",
                 "--out", str(vae)]) == 0
    assert main(["interpolate", str(vae), "--pairs", "2", "--steps", "4", "--out", str(tmp_path / "i.png")]) == 0
    assert main(["interpolate", str(vae), "--attribute", "1,0", "--out", str(tmp_path / "a.npy")]) == 0
    assert np.load(tmp_path / "a.npy").shape[1:] == (8, 1, 8, 8)
