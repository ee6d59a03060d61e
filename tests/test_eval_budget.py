"""`genlab eval` within its time cap, fixed costs included: an AIS log Z with fewer annealing steps,
a diffusion bound from a subset of its timesteps (unbiased), each an estimate with its standard
error and the cut stated, and the printer showing what was cut.

No assertion here is timed: the plans are checked with a clock the test moves, or a cap so small
that only the pilot runs."""
from __future__ import annotations

import io
import math

import pytest
import torch

from conftest import tiny_model
from genlab.evaluate import EvalSettings, evaluate
from genlab.metrics import budget
from genlab.metrics.budget import plan_terms, sized_terms
from genlab.metrics.capped import PILOT_STEPS, capped_likelihood, capped_log_partition
from genlab.metrics.likelihood import TermBound
from genlab.metrics.speed import timed_samples
from genlab.report import print_eval


@pytest.fixture(scope="module")
def digits_small(digits):
    return digits.subset(torch.arange(96))


@pytest.fixture(scope="module")
def ddpm(digits_small):
    model = tiny_model("ddpm", digits_small.spec, channels=None)  # T = 20, the MLP (3x faster than the U-Net)
    model.setup(digits_small.x)
    return model.eval()


@pytest.fixture
def ticking(monkeypatch):
    """`budget.clock` advanced by ``tick[0]`` seconds at each reading."""
    tick, now = [0.1], [0.0]

    def clock() -> float:
        now[0] += tick[0]
        return now[0]
    monkeypatch.setattr(budget, "clock", clock)
    return tick


def test_plan_terms_keeps_every_example_and_cuts_terms_first():
    assert plan_terms(0.01, (64, 8), (180, 20), 100.0) == (180, 20)  # everything fits
    assert plan_terms(1.0, (64, 8), (180, 1000), 100.0) == (180, 284)  # 1/512 s per example-term
    assert plan_terms(1.0, (64, 8), (180, 1000), 0.2) == (102, 1)  # not even one term each: fewer examples
    assert plan_terms(1.0, (64, 8), (180, 1000), 0.05) == (64, 8)  # less than the pilot: the pilot's result


def test_sized_terms_runs_the_plan_and_says_what_it_cut(ticking):
    calls = []

    def run(n, k):
        calls.append((n, k))
        return n, k
    # each clock reading is 0.1 s later: the pilot (64 x 8) takes 0.1 s, 4.1 s are left
    out, n, k, why = sized_terms(run, 100, 1000, 4.2, what="terms of the bound")
    assert calls == [(64, 8), (100, 209)] and out == (100, 209) and (n, k) == (100, 209)
    assert why.startswith("209 of 1000 terms of the bound per example (") and "--metric-seconds" in why
    assert sized_terms(run, 100, 1000, None) == ((100, 1000), 100, 1000, None)


def test_the_bound_from_all_its_terms_is_log_prob(ddpm, digits_small):
    assert isinstance(ddpm, TermBound) and ddpm.bound_terms == 20
    x = digits_small.x[:6]
    with torch.no_grad():
        full = ddpm.log_prob(x, generator=torch.Generator().manual_seed(3))
        terms = ddpm.log_prob_terms(x, 20, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(terms, full)


def test_the_bound_from_a_subset_of_timesteps_is_unbiased(ddpm, digits_small):
    """Per example, the mean of many 3-of-20-timestep estimates against the mean of many full
    sums (each full sum is itself random: one x_t draw per term), within 4 standard errors."""
    reps = 300
    x = digits_small.x[:2].repeat_interleave(reps, 0)
    with torch.no_grad():
        full = ddpm.log_prob(x, generator=torch.Generator().manual_seed(1)).double().view(2, reps)
        sub = ddpm.log_prob_terms(x, 3, generator=torch.Generator().manual_seed(2)).double().view(2, reps)
    se = (full.var(1) / reps + sub.var(1) / reps).sqrt()
    assert (sub.var(1) > full.var(1)).all()  # the subset is noisier, and its noise is in the spread
    assert ((sub.mean(1) - full.mean(1)).abs() < 4 * se).all(), (sub.mean(1), full.mean(1), se)


def test_a_cut_bound_is_an_estimate_with_its_stderr_and_the_cut_stated(ddpm, digits_small):
    figures, why = capped_likelihood(ddpm, digits_small.x, None, ais_steps=0, seed=0, cap=1e-9)
    e = figures["nll_nats"]
    assert e["n"] == 64 and math.isfinite(e["stderr"]) and e["stderr"] > 0
    assert figures["nll_is"] == "upper bound" and figures["nll_estimate"].startswith("8 of 20 terms per example")
    assert why.startswith("8 of 20 terms of the bound per example, 64 of 96 examples")
    full, none = capped_likelihood(ddpm, digits_small.x, None, ais_steps=0, seed=0, cap=None)
    assert none is None and "nll_estimate" not in full and full["nll_nats"]["n"] == 96


@pytest.fixture(scope="module")
def rbm(digits_small):
    model = tiny_model("rbm", digits_small.spec, hidden=24)  # above exact_max_hidden (20): AIS
    model.setup(digits_small.x)
    with torch.no_grad():  # weights of a trained size, so that log Z is not the base model's
        model.W.copy_(0.3 * torch.randn(model.W.shape, generator=torch.Generator().manual_seed(0)))
    return model.eval()


def test_a_cut_ais_log_z_is_an_estimate_with_its_stderr_and_the_cut_stated(rbm, ticking):
    assert rbm.partition_method() == "ais"
    (log_z, how), steps, why = capped_log_partition(rbm, 1000, 1e-9)
    assert how == "ais" and steps == PILOT_STEPS and log_z.n == 8 and 0 < log_z.stderr < math.inf
    assert why.startswith(f"{PILOT_STEPS} of 1000 AIS steps of log Z: the pilot") and "--metric-seconds" in why
    # the pilot of 10 steps reads as 0.1 s: 1.0 s leaves 0.9 s, 90 steps
    (_, how), steps, why = capped_log_partition(rbm, 1000, 1.0)
    assert steps == 90 and why.startswith("90 of 1000 AIS steps of log Z: 0.01 s each")
    (_, how), steps, why = capped_log_partition(rbm, 50, 100.0)
    assert steps == 50 and why is None


def test_eval_of_an_energy_model_reports_the_steps_its_log_z_had(rbm, digits_small):
    res = evaluate(rbm, digits_small, digits_small, settings=EvalSettings(metric_seconds=1e-9, metrics="nll",
                                                                          log_z_steps=1000), classifier_cache=None)
    if "nll" in res["not_computed"]:  # 10 steps may not converge: the refusal names the cut
        assert f"{PILOT_STEPS} of 1000 AIS steps under the time cap" in res["not_computed"]["nll"]
    else:
        assert res["metrics"]["log_partition"]["steps"] == PILOT_STEPS
    assert res["cut"]["nll"].startswith(f"{PILOT_STEPS} of 1000 AIS steps of log Z")  # kept either way


def test_print_eval_shows_what_the_time_cap_cut(ddpm, digits_small):
    res = evaluate(ddpm, digits_small, digits_small, settings=EvalSettings(metric_seconds=1e-9, metrics="nll"),
                   classifier_cache=None)
    assert res["cut"]["nll"].startswith("8 of 20 terms of the bound per example")
    out = io.StringIO()
    print_eval(res, file=out)
    line = next(ln for ln in out.getvalue().splitlines() if "cut by the time cap" in ln)
    assert line.strip() == ("cut by the time cap (--metric-seconds): nll: 8 of 20 terms of the bound per example, 64 "
                            "of 96 examples (an unbiased stratified estimate of the sum; its noise is in the stderr)")
    uncut = evaluate(ddpm, digits_small, digits_small, settings=EvalSettings(metric_seconds=0, metrics="nll"),
                     classifier_cache=None)
    out = io.StringIO()
    print_eval(uncut, file=out)
    assert uncut["cut"] == {} and "cut by" not in out.getvalue()


class _FixedCostSampler:
    """``sample(k)`` costs 3 s per call plus 0.01 s per sample on the test's clock ``now``."""

    def __init__(self, now: list[float]):
        self.now = now

    def sample(self, k, condition=None, generator=None):
        self.now[0] += 3.0 + 0.01 * k
        return torch.zeros(k, 2)


def test_sampling_starts_no_batch_that_would_end_past_the_cap(monkeypatch):
    """The pilot of 32 (3.32 s) plans 96 samples in 10 s, but batches of 16 cost 3.16 s each:
    two fit, a third would end past the cap."""
    now = [0.0]
    monkeypatch.setattr(budget, "clock", lambda: now[0])
    x, speed = timed_samples(_FixedCostSampler(now), 2000, condition=None, seed=0, max_seconds=10.0)
    assert len(x) == speed["n"] == 64 and speed["seconds"] == pytest.approx(9.64)
    assert speed["note"].startswith("n lowered from 2000 to 64: ")
