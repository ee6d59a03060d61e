"""Trainer speed options: ``compile`` (torch.compile of the loss), ``amp``, ``threads``, and
the public single step (``prepare`` + ``train_step``) the benchmarks drive."""
from __future__ import annotations

import functools

import pytest
import torch

from genlab.train import TrainConfig, Trainer
from genlab.train import trainer as trainer_mod

from conftest import fit_tiny, tiny_model


def losses_of(family, ds, **train_kw):
    seen: list[float] = []
    model, tr = fit_tiny(family, ds, epochs=1, callbacks=[lambda t, r: seen.append(r["loss/nll"])], **train_kw)
    return seen, model, tr


# a compilation costs ~7 CPU-s even with aot_eager: slow-marked, .ci/run's second step runs aot_eager
@pytest.mark.parametrize("backend", [pytest.param("aot_eager", marks=pytest.mark.slow),
                                     pytest.param("inductor", marks=pytest.mark.slow)])
def test_compiled_loss_trains_like_eager(backend, moons, monkeypatch):
    """Same data order, same updates: the compiled step follows the eager one to float32 rounding
    over a whole epoch (6 steps, the last one a short batch of 16, which compiles a second graph).
    ``aot_eager`` traces forward and backward as the default does but runs them eagerly (seconds);
    ``inductor`` (what ``compile=True`` uses) generates C++ kernels: ~1.5 min of compiling, slow."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend=backend))
    eager, m_e, _ = losses_of("realnvp", moons)
    compiled, m_c, tr = losses_of("realnvp", moons, compile=True)
    assert tr.loss_fns[0] is not tr.objectives[0].loss  # the compiled wrapper was used
    assert len(compiled) == len(eager) == 6
    torch.testing.assert_close(torch.tensor(compiled), torch.tensor(eager), rtol=1e-4, atol=1e-4)
    for (k, v), (_, w) in zip(m_e.state_dict().items(), m_c.state_dict().items()):
        torch.testing.assert_close(v, w, rtol=1e-4, atol=1e-5, msg=k)


def test_compile_leaves_closed_form_objectives_alone(moons):
    """gmm's EM objective has no optimizer: compile=True must not wrap (or break) it."""
    _, tr = fit_tiny("gmm", moons, epochs=2, compile=True)
    assert all(f == o.loss for f, o in zip(tr.loss_fns, tr.objectives))
    assert torch.isfinite(tr.model.log_prob(moons.x)).all()


def test_fp16_amp_is_ignored_on_cpu_with_a_warning(moons):
    plain, m0, _ = losses_of("realnvp", moons)
    with pytest.warns(UserWarning, match="amp='fp16': fp16 applies only on CUDA"):
        amp, m1, tr = losses_of("realnvp", moons, amp="fp16")
    assert tr.amp == "off" and tr.scaler is None
    assert amp == plain  # bitwise: nothing changed on CPU
    for (k, v), (_, w) in zip(m0.state_dict().items(), m1.state_dict().items()):
        torch.testing.assert_close(v, w, rtol=0, atol=0, msg=k)


def test_bf16_amp_on_cpu_follows_float32_where_supported(moons, monkeypatch):
    """With native bf16 (or forced on, as here, whatever the CPU) the matmuls run in bf16: the
    losses differ from float32 in rounding only; without it, a warning and float32."""
    plain, _, _ = losses_of("realnvp", moons)
    monkeypatch.setattr(trainer_mod, "cpu_has_bf16", lambda: True)
    bf16, _, tr = losses_of("realnvp", moons, amp="bf16")
    assert tr.amp == "bf16" and tr.scaler is None
    assert bf16 != plain
    torch.testing.assert_close(torch.tensor(bf16), torch.tensor(plain), rtol=0.05, atol=0.05)
    monkeypatch.setattr(trainer_mod, "cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match="bf16 applies only on CUDA and on CPUs with native bf16"):
        again, _, tr = losses_of("realnvp", moons, amp="bf16")
    assert tr.amp == "off" and again == plain


def test_train_step_is_fits_step(moons):
    """prepare + train_step on fit's first batch gives fit's weights after one step, and
    train_step before prepare is refused with the fix."""
    x = moons.x[:64]
    cfg = dict(epochs=1, batch_size=64, seed=3, progress=False, device="cpu", lr_schedule="constant")
    fitted = Trainer(tiny_model("realnvp", moons.spec, 0), TrainConfig(**cfg))
    fitted.fit(x)
    stepped = Trainer(tiny_model("realnvp", moons.spec, 0), TrainConfig(**cfg))
    with pytest.raises(RuntimeError, match=r"call trainer.prepare\(x_train\)"):
        stepped.train_step(x)
    stepped.prepare(x)
    record = stepped.train_step(x[stepped._epoch_order(len(x))])
    assert record["step"] == 1 and stepped.step == 1
    for (k, v), (_, w) in zip(fitted.model.state_dict().items(), stepped.model.state_dict().items()):
        torch.testing.assert_close(v, w, rtol=0, atol=0, msg=k)


def test_unknown_amp_mode_is_refused(moons):
    with pytest.raises(ValueError, match=r"TrainConfig\.amp must be one of 'off', 'bf16', 'fp16'; got 'fp8'"):
        TrainConfig(amp="fp8", device="cpu", progress=False)
    cfg = TrainConfig(device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"TrainConfig\.amp must be one of .*; got 'fp8'"):
        cfg.amp = "fp8"
    assert cfg.amp == "off"  # a refused value is not kept


def test_threads_hold_during_fit_and_are_restored(moons):
    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    seen: list[int] = []
    fit_tiny("gaussian", moons, epochs=1, threads=want, callbacks=[lambda t, r: seen.append(torch.get_num_threads())])
    assert seen and set(seen) == {want} and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads must be >= 1"):
        Trainer(tiny_model("realnvp", moons.spec), TrainConfig(threads=0, device="cpu", progress=False))
