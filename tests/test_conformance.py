"""The conformance suite: every registered family, on vectors (moons) and images (digits)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import genlab
from genlab import Conditional, Density, Energy, Latent, NotSupported, io
from genlab.protocol import Batch, Decoder, Translator

from conftest import FAMILY_CONFIGS, fit_tiny, tiny_model

CASES = [(f, d) for f in sorted(FAMILY_CONFIGS) for d in ("moons", "digits")]
NORMALIZED = (Density.EXACT, Density.BOUND)


def data_methods(model) -> dict:
    """The methods of ``model`` that take a batch of data, chosen by its capabilities."""
    methods = {}
    if model.density in NORMALIZED:
        methods["log_prob"] = model.log_prob
    if isinstance(model, Energy):
        methods["energy"] = model.energy
    if isinstance(model, Latent):
        methods["encode"] = model.encode
    return methods


def test_every_family_is_in_the_conformance_list():
    assert sorted(FAMILY_CONFIGS) == genlab.families()


@pytest.fixture(scope="module")
def fits(datasets):
    """(model, its weights, a seeded sample) of each case's tiny fit (seed 0), fitted once for
    the tests that only read the model; the weights and the sample are taken right after the fit, for
    the determinism test (a later test's sampling may advance a model's sampler state)."""
    cache = {}

    def get(family, data):
        if (family, data) not in cache:
            model = fit_tiny(family, datasets[data])[0]
            weights = {k: v.clone() for k, v in model.state_dict().items()}
            cache[family, data] = (model, weights, model.sample(5, generator=torch.Generator().manual_seed(2)))
        return cache[family, data]
    return get


@pytest.fixture(scope="module")
def fitted(fits):
    return lambda family, data: fits(family, data)[0]


@pytest.mark.parametrize("family,data", CASES)
def test_shapes_and_values(family, data, datasets, fitted):
    ds, model = datasets[data], fitted(family, data)
    x = model.sample(7, generator=torch.Generator().manual_seed(1))
    assert x.shape == (7, *ds.spec.event_shape)
    assert torch.isfinite(x).all()
    if ds.spec.is_discrete:
        assert (x == x.round()).all() and x.min() >= 0 and x.max() <= ds.spec.levels - 1
    for name, method in data_methods(model).items():
        out = method(ds.x[:11])
        assert out.shape[0] == 11 and torch.isfinite(out).all(), name
        if name != "encode":
            assert out.shape == (11,), name
        # flattened input is accepted too
        torch.testing.assert_close(method(ds.x[:11].reshape(11, -1)), out, msg=name)
    if isinstance(model, Latent):
        assert model.decode(model.encode(ds.x[:5])).shape == (5, *ds.spec.event_shape)
    if isinstance(model, Decoder):
        codes = torch.randn(5, model.latent_dim, generator=torch.Generator().manual_seed(2))
        x = model.decode(codes)
        assert x.shape == (5, *ds.spec.event_shape) and torch.isfinite(x).all()


@pytest.mark.parametrize("family,data", CASES)
def test_a_training_step_lowers_the_loss_on_a_fixed_batch(family, data, datasets):
    ds = datasets[data]
    model = tiny_model(family, ds.spec)
    model.setup(ds.x, ds.y, ds.x[:32])
    batch_x = ds.x[:64]
    for obj in model.objectives():
        def loss():
            return obj.loss(Batch(batch_x, None, torch.Generator().manual_seed(3)))
        first = float(loss().value.detach())
        if not obj.parameters:  # closed form / EM: repeated updates never make it worse
            values = [first] + [float(loss().value) for _ in range(3)]
            assert all(b <= a + 1e-6 * abs(a) for a, b in zip(values, values[1:])), values
            continue
        opt = torch.optim.Adam(obj.parameters, lr=1e-3)
        for _ in range(10):
            opt.zero_grad()
            loss().value.backward()
            opt.step()
        last = float(loss().value.detach())
        assert last < first, f"{obj.name}: {first} -> {last}"


@pytest.mark.parametrize("family,data", CASES)
def test_save_load_round_trip(family, data, datasets, fitted, tmp_path):
    ds, model = datasets[data], fitted(family, data)
    io.save(model, tmp_path)
    back = genlab.load(tmp_path)
    assert type(back) is type(model) and back.spec == model.spec and back.config == model.config
    s1 = model.sample(9, generator=torch.Generator().manual_seed(5))
    s2 = back.sample(9, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)
    for name, method in data_methods(back).items():
        torch.testing.assert_close(data_methods(model)[name](ds.x[:20]), method(ds.x[:20]), rtol=0, atol=0,
                                   msg=name)


@pytest.mark.parametrize("family,data", CASES)
def test_deterministic_under_a_seed(family, data, datasets, fits):
    """A second fit with the same seed, later in the session (other tests have used the global RNG
    in between), gives the same weights and the same seeded samples as the shared one."""
    _, weights, sample = fits(family, data)
    b, _ = fit_tiny(family, datasets[data])
    assert b.state_dict().keys() == weights.keys()
    for k, w in b.state_dict().items():
        torch.testing.assert_close(weights[k], w, rtol=0, atol=0, msg=k)
    torch.testing.assert_close(sample, b.sample(5, generator=torch.Generator().manual_seed(2)), rtol=0, atol=0)


@pytest.mark.parametrize("family", sorted(FAMILY_CONFIGS))
def test_not_supported_where_the_table_says(family, moons, fitted):
    """What the capability table offers works; what it does not offer raises `NotSupported`
    with the reason."""
    model = fitted(family, "moons")
    if model.density in NORMALIZED:
        assert torch.isfinite(model.log_prob(moons.x[:4])).all()
    else:
        with pytest.raises(NotSupported, match="density"):
            model.log_prob(moons.x[:4])
    if not isinstance(model, Conditional):  # conditional ones: test_conditional_families_follow_the_label
        with pytest.raises(NotSupported, match="not conditional"):
            model.sample(3, condition=torch.zeros(3, dtype=torch.long))
    est = genlab.Estimator(family, epochs=1, **FAMILY_CONFIGS[family]).fit(moons.x[:128].numpy())
    if isinstance(est.model_, Latent):
        codes = est.transform(moons.x[:4].numpy())
        assert codes.shape[0] == 4 and np.isfinite(codes).all()
    else:
        with pytest.raises(NotSupported, match="latent"):
            est.transform(moons.x[:4].numpy())


@pytest.mark.parametrize("family,data", CASES)
def test_bad_input_is_refused_with_a_clear_error(family, data, datasets, fitted):
    """Every method that takes data (by capability: log_prob, energy, encode) checks it."""
    ds, model = datasets[data], fitted(family, data)
    methods = data_methods(model)
    if not methods:
        what = ("images of another domain, through translate (tests/test_gans.py)" if isinstance(model, Translator)
                else "none (it only samples)")
        pytest.skip(f"{family} has no density, energy or encoder; the data it takes once trained: {what}")
    bad = ds.x[:4].clone()
    bad[2, 0] = float("nan")
    for name, method in methods.items():
        with pytest.raises(ValueError, match="expected shape"):
            method(torch.zeros(4, 3))
        with pytest.raises(ValueError, match="NaN or Inf in 1 example.*row 2"):
            method(bad)
        with pytest.raises(ValueError, match="numeric"):
            method(ds.x[:4].numpy().astype(str))


@pytest.mark.parametrize("family", sorted(FAMILY_CONFIGS))
def test_conditional_families_follow_the_label(family, digits, fitted):
    model = fitted(family, "digits")
    if not isinstance(model, Conditional):
        pytest.skip(f"{family} is not conditional")
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    a = model.sample(16, condition=torch.zeros(16, dtype=torch.long), generator=g())
    b = model.sample(16, condition=torch.full((16,), 5), generator=g())
    assert a.shape == b.shape == (16, *digits.spec.event_shape)
    assert not torch.equal(a, b), "samples must depend on the label"
    with pytest.raises(ValueError, match="condition labels"):
        model.sample(2, condition=torch.tensor([0, 99]))
    if model.density in NORMALIZED:
        lp = model.log_prob(digits.x[:6], condition=digits.y[:6])
        assert lp.shape == (6,) and torch.isfinite(lp).all()


# -- exact resume: Ctrl-C (SIGINT) between steps, and a time budget, then resume -------------------
from genlab.train.stop import StopReason  # noqa: E402


def _fit_into(family, ds, out, resume=False, callbacks=None, **kw):
    """fit_tiny's run, into (or resumed from) ``out``; returns the trainer."""
    from genlab.train import TrainConfig, Trainer
    n_val = max(2, len(ds) // 8)
    cfg = TrainConfig(epochs=2, batch_size=64, seed=0, progress=False, device="cpu", **kw)
    tr = Trainer(tiny_model(family, ds.spec), cfg, out=out, callbacks=callbacks)
    tr.fit(ds.x[n_val:], ds.y[n_val:] if ds.y is not None else None, ds.x[:n_val], resume=resume)
    return tr


def _training_weights(run):
    snap = io.rundir.read(run, ["checkpoint.safetensors"])
    return {k: v for k, v in io.parse_tensors(snap.files["checkpoint.safetensors"], run).items()
            if k.startswith("model.")}


@pytest.fixture(scope="module")
def uninterrupted(digits, tmp_path_factory):
    cache = {}

    def get(family):
        if family not in cache:
            out = tmp_path_factory.mktemp(f"full-{family}")
            tr = _fit_into(family, digits, out)
            cache[family] = ({k: v.clone() for k, v in tr.model.state_dict().items()}, _training_weights(out), tr.step)
        return cache[family]
    return get


# one family per mechanism a checkpoint must carry runs by default (several optimizers and `every`,
# Monte-Carlo noise, EMA, EM on the full batch, a replay buffer); all with -m slow
_RESUME_DEFAULT = {"gan", "vae", "realnvp", "gmm", "ebm"}


@pytest.mark.parametrize("cut", ["sigint", "budget"])
@pytest.mark.parametrize("family", [f if f in _RESUME_DEFAULT else pytest.param(f, marks=pytest.mark.slow)
                                    for f in sorted(FAMILY_CONFIGS)])
def test_interrupted_then_resumed_run_ends_bit_exactly_as_an_uninterrupted_one(family, cut, digits, uninterrupted,
                                                                             tmp_path):
    import os
    import signal
    final, weights, steps = uninterrupted(family)
    if cut == "sigint":  # Ctrl-C during step 2 (the first, for full-batch families): caught between steps
        def ctrl_c(trainer, record):
            if record["step"] == min(2, steps):
                os.kill(os.getpid(), signal.SIGINT)
        try:
            _fit_into(family, digits, tmp_path, callbacks=[ctrl_c])
        except KeyboardInterrupt:
            pass  # (a run that converged at that step finishes instead)
        tr = _fit_into(family, digits, tmp_path, resume=True)
    else:  # a budget of 0 minutes: every fit stops after one step, validates and checkpoints
        tr = _fit_into(family, digits, tmp_path, max_minutes=0.0)
        for _ in range(steps):
            if tr.stopped is not StopReason.TIME_BUDGET:
                break
            tr = _fit_into(family, digits, tmp_path, resume=True, max_minutes=0.0)
        assert tr.stopped is not StopReason.TIME_BUDGET and tr.step == steps
    for k, v in _training_weights(tmp_path).items():
        torch.testing.assert_close(v, weights[k], rtol=0, atol=0, msg=f"training weights {k}")
    for k, v in tr.model.state_dict().items():
        torch.testing.assert_close(v, final[k], rtol=0, atol=0, msg=f"returned model {k}")
    for k, v in io.load(tmp_path).state_dict().items():
        torch.testing.assert_close(v, final[k], rtol=0, atol=0, msg=f"saved model {k}")
