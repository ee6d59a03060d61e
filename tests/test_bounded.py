"""Commands bounded by what the user asked: the transformer's key/value cache, previews sized to
the time left, `genlab train --max-minutes` covering the figures, and eval's time cap per metric.

No assertion here is timed: the choices are checked from given (fake) measured speeds."""
from __future__ import annotations

import json

import time

import pytest
import torch

from conftest import tiny_model
from genlab.cli import main
from genlab.cli.train import training_share, write_run_figures
from genlab.data import load_dataset, split
from genlab.evaluate import EvalSettings, evaluate
from genlab.metrics.budget import PILOT, plan_examples
from genlab.nn.attention import Block
from genlab.report.preview import plan_preview, sampler_steps, steps_set
from genlab.runs import saved_train_config


def _uncached(model, n: int, g: torch.Generator, prefix: torch.Tensor | None = None) -> torch.Tensor:
    """Sampling by the definition: the whole prefix through the network at every position."""
    z = torch.zeros(n, model.length)
    start = 0 if prefix is None else prefix.shape[1]
    if prefix is not None:
        z[:, :start] = prefix
    for t in range(start, model.length):
        z[:, t] = model.head.sample(model.conditionals(z[:, :t + 1])[:, t], g, model.config.temperature)
    return z


@pytest.mark.parametrize("data", ["digits", "moons"])
def test_cached_transformer_sampling_draws_what_the_uncached_definition_draws(data, datasets):
    model = tiny_model("transformer", datasets[data].spec, n_layers=2).eval()
    with torch.no_grad():
        want = _uncached(model, 6, torch.Generator().manual_seed(3))
        got = model._sample(6, generator=torch.Generator().manual_seed(3)).reshape(6, -1)
        prefix = want[:, :3]
        want_p = _uncached(model, 6, torch.Generator().manual_seed(4), prefix)
        got_p = model._sample(6, generator=torch.Generator().manual_seed(4), prefix=prefix).reshape(6, -1)
    if datasets[data].spec.is_discrete:
        assert torch.equal(got, want) and torch.equal(got_p, want_p)
    else:
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(got_p, want_p, rtol=1e-4, atol=1e-4)


def test_cached_sampling_feeds_each_position_once(digits):
    model = tiny_model("transformer", digits.spec).eval()
    lengths = []
    model.blocks[0].register_forward_hook(lambda mod, args, out: lengths.append(args[0].shape[1]))
    model.sample(2, generator=torch.Generator().manual_seed(0))
    assert sum(lengths) == model.length  # T positions in all, not T (T + 1) / 2


def test_a_cache_refuses_positions_past_its_length():
    block = Block(8, 2, 2, 0.0).eval()
    cache = block.new_cache(1, 3, torch.zeros(()))
    block(torch.randn(1, 3, 8), cache)
    with pytest.raises(ValueError, match="do not fit"):
        block(torch.randn(1, 1, 8), cache)


def test_plan_keeps_the_full_preview_when_it_fits():
    plan = plan_preview(0.001, 60.0, want=64, least=16, steps=20, least_steps=10)
    assert (plan.n, plan.steps, plan.cut) == (64, 20, False)


def test_plan_cuts_samples_then_steps_from_the_measured_speed():
    # 0.1 s per sample and step: 64 samples at 20 steps take 128 s; 20 s are left
    plan = plan_preview(0.1, 20.0, want=64, least=16, steps=20, least_steps=10)
    assert (plan.n, plan.steps, plan.cut) == (16, 12, True)
    assert "16 of 64 samples" in plan.note and "12 of 20 steps" in plan.note
    plan = plan_preview(0.1, 50.0, want=64, least=16, steps=20, least_steps=10)
    assert (plan.n, plan.steps) == (25, 20)  # samples go first
    plan = plan_preview(0.1, 5.0, want=64, least=16, steps=20, least_steps=10)
    assert (plan.n, plan.steps) == (5, 10)  # at the fewest steps, fewer samples still
    assert plan_preview(0.1, 0.5, want=64, least=16, steps=20, least_steps=10).n == 0
    plan = plan_preview(0.01, 1.0, want=2000, least=200)  # no steps setting: samples only
    assert (plan.n, plan.steps) == (100, None)


def test_a_diffusion_preview_with_fewer_steps_samples_by_ddim_and_restores_the_model(digits):
    model = tiny_model("ddpm", digits.spec, sampler="ddpm", sample_steps=None)
    assert sampler_steps(model) == model.schedule.T == 20
    with steps_set(model, 5):
        assert (model.config.sampler, model.sample_steps) == ("ddim", 5)
    assert (model.config.sampler, model.config.sample_steps) == ("ddpm", None)
    assert sampler_steps(tiny_model("gaussian", digits.spec)) is None


def test_no_time_left_draws_no_samples_but_the_loss_curve(tmp_path, digits):
    model = tiny_model("gaussian", digits.spec)
    model.setup(digits.x)
    assert write_run_figures(model, tmp_path, split(digits, seed=0), seed=0, seconds=0.0) is None
    assert not (tmp_path / "samples.png").exists()


def test_the_budget_keeps_a_share_for_the_preview():
    assert training_share(300.0, 3.0) == pytest.approx(300 - 30 - 3)
    assert training_share(3.0, 0.0) == pytest.approx(1.5)  # at most half goes to the preview
    assert training_share(3600.0, 0.0) == pytest.approx(3600 - 60)
    assert training_share(10.0, 20.0) == 0.0


def test_train_gives_the_trainer_less_than_the_whole_budget(tmp_path, monkeypatch):
    import genlab.cli.train as cli_train
    seen = {}
    real = cli_train.train_run

    def spy(*a, **kw):
        seen["left"] = kw["deadline"] - time.monotonic()
        return real(*a, **kw)
    monkeypatch.setattr(cli_train, "train_run", spy)
    out = tmp_path / "run"
    assert main(["train", "gaussian", "--data", "moons", "--n", "200", "--max-minutes", "0.5",
                 "--out", str(out)]) == 0
    assert 0 < seen["left"] < 30 - 5 + 1e-6  # the preview keeps at least 5 s of the 30
    assert saved_train_config(out).max_minutes == 0.5  # what the user asked is what the run records


def test_plan_examples_from_a_pilot():
    assert plan_examples(0.5, 16, 180, 30.0) == 180  # 180 examples at 0.03 s fit 30 s
    assert plan_examples(2.0, 16, 180, 10.0) == 80
    assert plan_examples(20.0, 16, 180, -1.0) == 16  # the pilot's own result is kept
    assert plan_examples(9.0, 200, 180, 0.0) == 180


def test_eval_cuts_a_metric_to_its_cap_and_says_why(capsys):
    s = split(load_dataset("moons", n=1000, seed=0), seed=0)
    model = tiny_model("gaussian", s.train.spec)
    model.setup(s.train.x)
    res = evaluate(model, s.train, s.test, settings=EvalSettings(metric_seconds=1e-9, metrics="nll"),
                   classifier_cache=None, verbose=True)
    assert res["metrics"]["nll_nats"]["n"] == PILOT < len(s.test)
    assert "--metric-seconds" in res["cut"]["nll"]
    err = capsys.readouterr().err
    assert "nll:" in err and "nll_nats" in err and "cut:" in err
    full = evaluate(model, s.train, s.test, settings=EvalSettings(metric_seconds=0, metrics="nll"),
                    classifier_cache=None)
    assert full["metrics"]["nll_nats"]["n"] == len(s.test) and full["cut"] == {}
    # the HTML report's row marks the cut cell, its reason in the tooltip; the full evaluation has no mark
    from genlab.report.results import row
    cut_row, full_row = row("gaussian", res, None, False), row("gaussian", full, None, False)
    assert ">cut</span>" in cut_row[2].shown and "--metric-seconds" in cut_row[2].shown
    assert not any(">cut</span>" in c.shown for c in full_row)


def test_a_deadline_stops_training_like_a_budget_without_changing_the_saved_settings(tmp_path):
    """What `genlab train --max-minutes` passes so that the preview keeps its share of the budget."""
    from genlab.train import StopReason, TrainConfig, Trainer
    ds = load_dataset("moons", n=384, seed=0)
    tr = Trainer(tiny_model("realnvp", ds.spec), TrainConfig(epochs=50, max_minutes=10.0, progress=False,
                                                            device="cpu"), out=tmp_path, deadline=time.monotonic())
    tr.fit(ds.x[48:], None, ds.x[:48])
    assert tr.stopped is StopReason.TIME_BUDGET and tr.step == 1
    assert json.loads((tmp_path / "trainer.json").read_text())["config"]["max_minutes"] == 10.0


class _Clock:
    """A clock the test moves: each training step costs 1 s, each validation ``val_s``."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    monotonic = perf_counter


@pytest.mark.parametrize("val_s", [5.0, 0.0, 30.0])
def test_a_budget_keeps_room_for_the_last_validation(monkeypatch, val_s):
    """The budget stop validates once more: training stops early enough for it to fit, from the
    last validation's measured time (or, before the first, an estimate from the step time); a
    validation longer than the budget is not run again at the stop (the latest model is kept)."""
    import genlab.train.trainer as trainer_module
    from genlab.train import StopReason, TrainConfig, Trainer
    clock = _Clock()
    monkeypatch.setattr(trainer_module, "time", clock)
    ds = load_dataset("moons", n=600, seed=0)  # 552 training rows, batch 64: 9 steps an epoch
    model = tiny_model("realnvp", ds.spec)
    val_loss = model.val_loss

    calls = []

    def slow_val_loss(*a, **kw):
        calls.append(clock.now)
        clock.now += val_s
        return val_loss(*a, **kw)

    monkeypatch.setattr(model, "val_loss", slow_val_loss)

    def step_costs_a_second(tr, record):
        clock.now += 1.0

    budget = 20.0
    tr = Trainer(model, TrainConfig(epochs=100, batch_size=64, max_minutes=budget / 60, progress=False,
                                    device="cpu"), callbacks=[step_costs_a_second])
    tr.fit(ds.x[48:], None, ds.x[:48])
    assert tr.stopped is StopReason.TIME_BUDGET
    if val_s > budget:  # the end of the first epoch (9 s) could not know; the stop skips its validation
        assert calls == [9.0] and tr.step == 10 and clock.now == 40.0 and tr.stop_val is None
        return
    assert clock.now <= budget + 1.0  # at most the step during which the room ran out
    if val_s:  # one epoch (9 s + a 5 s validation), one step more (15 s), then the stop's validation
        assert tr.epoch == 1 and tr.step == 10 and clock.now == 20.0 and tr.stop_val is not None


def test_every_iterative_sampler_has_the_steps_knob_the_preview_cuts():
    """mrf's Gibbs sweeps were `sweeps`, which the preview did not see; runs saved with the old
    name still load."""
    from genlab import settings
    from genlab.data.spec import DataSpec, Kind
    from genlab.models.mrf import MRFConfig
    mrf = tiny_model("mrf", DataSpec((4,), Kind.BINARY, levels=2), sample_steps=7)
    assert sampler_steps(mrf) == 7
    with steps_set(mrf, 3):
        assert mrf.config.sample_steps == 3
    assert mrf.config.sample_steps == 7
    assert settings.build(MRFConfig, {"sweeps": 9}).sample_steps == 9


def test_a_preview_draw_stops_at_its_allowance_whatever_the_family(digits):
    """A made on large images needs one pass per pixel for a single sample: the pilot itself must
    stop at the allowance (between two module calls), not after minutes."""
    from genlab.report.preview import preview_samples
    model = tiny_model("made", digits.spec).eval()
    calls = []

    def slow_call(module, args):
        calls.append(module)
        time.sleep(0.05)
    slow = [m.register_forward_pre_hook(slow_call) for m in model.modules()]
    x, plan = preview_samples(model, 0.3, want=16, least=4, generator=torch.Generator().manual_seed(0))
    in_preview = len(calls)
    for h in slow:
        h.remove()
    assert x is None and plan.n == 0 and "did not finish" in plan.note
    calls.clear()
    counting = [m.register_forward_pre_hook(lambda m, a: calls.append(m)) for m in model.modules()]
    assert model.sample(1, generator=torch.Generator().manual_seed(0)).shape[0] == 1  # no deadline hook left
    for h in counting:
        h.remove()
    assert in_preview < len(calls)  # stopped before even one sample's module calls were done


def test_the_done_line_reports_a_budget_stops_validation_when_no_epoch_finished():
    """A 5-minute transformer run stopped inside its first epoch printed "best validation loss None"."""
    from genlab.cli.train import _validation_words
    assert _validation_words({"best_val_loss": None, "val_loss_at_stop": 164.1}) == \
        "no epoch finished: no best validation loss; validation loss at the stop 164.1"
    assert _validation_words({"best_val_loss": 83.5, "val_loss_at_stop": 84.0}) == \
        "best validation loss 83.5; validation loss at the stop 84"
    assert "None" not in _validation_words({"best_val_loss": None})
