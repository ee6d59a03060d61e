"""Lossless compression (genlab/tasks/compress.py, bitsback.py): bit-exact round trips on random
inputs, code lengths against -log2 p, the file's checks, and the CLI."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FAMILY_CONFIGS, fit_tiny, tiny_model
from genlab.data.datasets import Dataset
from genlab.data.spec import DataSpec, Kind
from genlab.protocol import NotSupported
from genlab.tasks import compress as cz
from genlab.tasks.compress import compress, decompress, measure, method_for, read_header

FAMILIES = ["made", "made-1", "pixelcnn", "transformer", "bayesnet", "gaussian", "gmm", "vae", "iwae", "vae-binary",
            "vae-bernoulli", "vae-categorical"]
OVERRIDES = {"made-1": {"n_orders": 1},  # one ordering: log_prob is then the chain that compress codes
             "vae-bernoulli": {"latent": "bernoulli", "latent_dim": 6},
             "vae-categorical": {"latent": "categorical", "latent_dim": 3, "categories": 4}}


@pytest.fixture(scope="module")
def binary_digits(digits):
    return Dataset((digits.x >= 8).float(), digits.y, DataSpec((1, 8, 8), Kind.BINARY, num_classes=10), "bin")


@pytest.fixture(scope="module")
def models(digits, binary_digits):
    out = {}
    for f in FAMILIES:
        fam, ds = ("vae", binary_digits) if f == "vae-binary" else (f.split("-")[0], digits)
        with pytest.MonkeyPatch.context() as monkey:
            monkey.setitem(FAMILY_CONFIGS, fam, {**FAMILY_CONFIGS[fam], **OVERRIDES.get(f, {})})
            out[f] = fit_tiny(fam, ds, epochs=1)[0]
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_is_bit_exact_on_random_inputs(models, family):
    model = models[family]
    L, shape = model.spec.levels, tuple(model.spec.event_shape)

    @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 5))
    def check(seed, n):
        x = np.random.default_rng(seed).integers(0, L, size=(n, *shape))
        data = compress(model, x, seed=seed % 7)
        back = decompress(model, data)
        assert back.shape == (n, *shape)
        assert np.array_equal(back.numpy().astype(np.int64), x)
    check()


@pytest.mark.parametrize("family", ["made-1", "pixelcnn", "transformer", "bayesnet"])
def test_chain_code_length_is_the_models_nll(models, family):
    """Autoregressive and Bayesian-network codes are the model itself: the ideal length equals
    -log2 p(x) from log_prob, and ANS adds at most a few words for the whole batch. (A MADE with
    several orderings is coded with ordering 0, not its ensemble: hence made-1 here.)"""
    model = models[family]
    x = model.sample(8, generator=torch.Generator().manual_seed(1))
    r = measure(model, x)
    dims = 8 * model.spec.dim
    assert r["method"] == "chain"
    assert abs(r["ideal_bits_per_dim"] - r["nll_bits_per_dim"]) * dims < 0.01 * 8  # < 0.01 bit/example
    assert 0 <= (r["payload_bits_per_dim"] - r["ideal_bits_per_dim"]) * dims <= 96 + 0.001 * dims


@pytest.mark.parametrize("family", ["gaussian", "gmm"])
def test_discretized_mixture_is_normalized_and_near_its_density(models, family, digits):
    """Q(x) = prod_d Q(x_d | x_<d) sums to 1 over every value of the first two entries (the
    conditionals of later entries are normalized rows); on data its code length is close to the
    dequantized NLL of the continuous density."""
    model = models[family]
    order, step = cz._chain_steps(model)
    L = model.spec.levels
    grid = np.array(list(itertools.product(range(L), repeat=2)))
    part = np.zeros((len(grid), model.spec.dim), dtype=np.int64)
    p0 = step(part, 0)[:, :]
    part[:, 0] = grid[:, 0]
    p1 = step(part, 1)
    q = p0[np.arange(len(grid)), grid[:, 0]] * p1[np.arange(len(grid)), grid[:, 1]]
    assert order[:2] == [0, 1] and abs(q.sum() - 1) < 1e-9
    assert np.allclose(step(np.zeros((3, model.spec.dim), dtype=np.int64), 5).sum(1), 1, atol=1e-9)
    r = measure(model, digits.x[:40])
    assert r["bits_per_dim"] > r["payload_bits_per_dim"]
    # ANS codes with 24-bit quantized probabilities: close to the float ideal (rare tail symbols of
    # these barely trained models cost up to 24 bits either way)
    assert abs(r["payload_bits_per_dim"] - r["ideal_bits_per_dim"]) < 0.05 * r["ideal_bits_per_dim"]
    if family == "gaussian":  # (the gmm after one EM step has near-singular components, NLL far off)
        # Q evaluates conditionals at bin centres; the dequantized bound pays Jensen's gap
        # tr(S^-1) / (24 L^2), large for these strongly correlated pixels: Q is no worse
        assert r["ideal_bits_per_dim"] < r["nll_bits_per_dim"]


@pytest.mark.parametrize("family", ["vae", "vae-binary"])
def test_bits_back_costs_the_negative_elbo(models, family):
    model = models[family]
    x = model.sample(40, generator=torch.Generator().manual_seed(2))
    r = measure(model, x, nll_samples=16)
    dims = 40 * model.spec.dim
    assert r["method"] == "bits-back"
    # one-sample cost vs the expected -ELBO: a few bits per example
    assert abs(r["ideal_bits_per_dim"] - r["nll_bits_per_dim"]) * dims < 3 * 40
    # the words: the ideal cost plus the initial words (a few, paid once) plus ANS rounding
    header = read_header(compress(model, x))
    assert header["initial_words"] <= 2 * math.ceil(model.latent.L * 24 / 32)
    assert abs((r["payload_bits_per_dim"] - r["ideal_bits_per_dim"]) * dims) <= 32 * header["initial_words"] + 96


def test_wrong_model_and_damaged_files_raise_value_error(models, digits):
    model = models["made"]
    data = compress(model, digits.x[:8])
    other = fit_tiny("made", digits, epochs=1, seed=3)[0]
    with pytest.raises(ValueError, match="decompress with the run that compressed it"):
        decompress(other, data)
    with pytest.raises(ValueError, match="compressed with a 'made'"):
        decompress(models["transformer"], data)
    flipped = bytearray(data)
    flipped[-3] ^= 0x10
    with pytest.raises(ValueError, match="corrupted"):
        decompress(model, bytes(flipped))
    with pytest.raises(ValueError, match="truncated"):
        decompress(model, data[:-4])
    with pytest.raises(ValueError, match="damaged header"):  # the header's own SHA-256 (format 2)
        decompress(model, data.replace(b'"n":8', b'"N":8'))
    with pytest.raises(ValueError, match="damaged header"):
        decompress(model, data.replace(b'"method":"chain"', b'"method":"other"'))
    with pytest.raises(ValueError, match="not a genlab compressed file"):
        decompress(model, b"PK" + data[2:])
    with pytest.raises(ValueError, match="levels|0..16"):
        compress(model, np.full((2, 64), 17))


def test_families_without_discrete_probabilities_raise_not_supported(digits, moons):
    for fam, ds in (("realnvp", digits), ("gan", digits), ("made", moons)):
        with pytest.raises(NotSupported):
            method_for(tiny_model(fam, ds.spec))
    assert method_for(tiny_model("pixelcnn", digits.spec)) == "chain"


def test_any_model_with_a_discrete_chain_rule_is_coded_through_it():
    """Dispatch is by capability, not class: a model written here (a Markov chain coded in
    reverse order) that declares `DiscreteChainRule` is entropy coded with its own conditionals,
    and the ideal code length is the sum of their -log2 probabilities."""
    from dataclasses import dataclass

    from genlab.protocol import Density, DiscreteChainRule, GenerativeModel

    @dataclass
    class NoSettings:
        pass

    class Markov(GenerativeModel, DiscreteChainRule):
        Config, density, name = NoSettings, Density.EXACT, "markov-test"

        def chain_order(self):
            return list(range(self.spec.dim))[::-1]

        def chain_conditional(self, partial, d):  # x_{D-1} uniform; x_d repeats x_{d+1} w.p. 0.9
            L, n = self.spec.levels, len(partial)
            if d == self.spec.dim - 1:
                return np.full((n, L), 1.0 / L)
            p = np.full((n, L), 0.1 / (L - 1))
            p[np.arange(n), partial[:, d + 1]] = 0.9
            return p

    model = Markov(DataSpec((6,), Kind.DISCRETE, levels=4), NoSettings())
    rng = np.random.default_rng(0)
    x = np.repeat(rng.integers(0, 4, (40, 1)), 6, axis=1)
    flip = rng.random(x.shape) < 0.2
    x[flip] = rng.integers(0, 4, int(flip.sum()))
    assert method_for(model) == "chain"
    data, info = cz._encode(model, x, seed=0)
    assert np.array_equal(decompress(model, data).numpy().astype(np.int64), x)
    same = (x[:, :-1] == x[:, 1:]).sum()
    ideal = 40 * 2 - same * math.log2(0.9) - (x[:, :-1].size - same) * math.log2(0.1 / 3)
    assert info["ideal_bits"] == pytest.approx(ideal, rel=1e-4)  # constriction floors each p at 1e-6


def test_cli_round_trip_keeps_dtype_and_shape(tmp_path, capsys, digits):
    from genlab.cli import main
    run = tmp_path / "run"
    assert main(["train", "bayesnet", "--data", "digits", "--out", str(run), "--no-progress"]) == 0
    x = digits.x[:20].reshape(20, 64).numpy().astype(np.uint8)
    np.save(tmp_path / "in.npy", x)
    assert main(["compress", str(run), str(tmp_path / "in.npy"), str(tmp_path / "x.glz")]) == 0
    assert main(["decompress", str(run), str(tmp_path / "x.glz"), str(tmp_path / "out.npy")]) == 0
    back = np.load(tmp_path / "out.npy")
    assert back.dtype == np.uint8 and back.shape == (20, 64) and np.array_equal(back, x)
    assert (tmp_path / "x.glz").stat().st_size < x.nbytes
    (tmp_path / "bad.glz").write_bytes((tmp_path / "x.glz").read_bytes()[:-8])
    assert main(["decompress", str(run), str(tmp_path / "bad.glz"), str(tmp_path / "o2.npy")]) == 2
    assert "truncated" in capsys.readouterr().err
