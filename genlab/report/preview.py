"""Preview samples sized to a time allowance: how many samples, and how many sampler steps, fit.

A run's ``samples.png`` (or ``samples.txt``) is drawn inside the command's budget, so its size is
decided from a measured speed, not fixed: a pilot draw of a few samples gives the seconds per
sample and sampler step, and `plan_preview` picks the largest preview that fits the seconds left,
cutting first the number of samples (down to a readable minimum), then the steps of an iterative
sampler (down to a floor), then the samples again. The choice is returned as words
(`PreviewPlan.note`) that the figure's title and the command's output show.

The sampler-steps knob is a family setting named ``sample_steps`` (diffusion: DDIM steps;
Langevin or Gibbs chains: steps per call to ``sample``); a `Diffusion` model whose sampler is
ancestral is switched to DDIM when its steps are cut (ancestral sampling needs all T steps).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor

from ..protocol import Diffusion, GenerativeModel

PREVIEW_SECONDS = 60.0  # a preview's allowance when the command has no budget
PILOT = 4  # samples of the pilot draw that measures the speed
LEAST_STEPS = 10  # an iterative sampler keeps at least this many steps (DDIM: still a fair picture)


@dataclass(frozen=True)
class PreviewPlan:
    """What a preview draws.

    Attributes:
        n: samples to draw (0: none fits; the note says why).
        steps: sampler steps per sample (None: the family has no steps setting).
        cut: whether ``n`` or ``steps`` are below what the preview wants.
        note: the choice in words, e.g. ``"16 of 64 samples, 10 of 20 steps: 2.1 s per sample, 12 s left"``.
    """

    n: int
    steps: int | None
    cut: bool
    note: str


def plan_preview(seconds_per_step: float, seconds: float, *, want: int, least: int,
                 steps: int | None = None, least_steps: int | None = None) -> PreviewPlan:
    """The largest preview that fits ``seconds``, from a measured speed.

    The cost model is ``n * steps * seconds_per_step`` (``steps`` = 1 without a steps setting):
    linear in both, which over-estimates a batched draw, so the plan errs on the short side.

    Args:
        seconds_per_step: measured seconds per sample and sampler step (per sample without steps).
        seconds: the allowance.
        want: samples of a full preview; least: the fewest that still make a readable one.
        steps: the sampler's steps (None: no steps setting); least_steps: the fewest steps allowed.
    Returns:
        The `PreviewPlan`: full when it fits; else fewer samples (not below ``least``); else
        ``least`` samples with fewer steps (not below ``least_steps``); else fewer samples at
        ``least_steps``; else none.
    """
    if want < 1 or not 1 <= least <= want:
        raise ValueError(f"plan_preview: need 1 <= least <= want, got least={least}, want={want}")
    s0 = steps or 1
    s_min = min(s0, least_steps or s0)
    cost = max(seconds_per_step, 1e-12)
    speed = f"{cost * s0:.3g} s per sample" + (f" at {s0} steps" if steps else "")
    left = f"{max(seconds, 0):.3g} s left"

    def plan(n: int, k: int) -> PreviewPlan:
        cut = n < want or k < s0
        parts = [f"{n} of {want} samples" if n < want else f"{n} samples"]
        if steps:
            parts.append(f"{k} of {s0} steps" if k < s0 else f"{k} steps")
        return PreviewPlan(n, k if steps else None, cut, ", ".join(parts) + (f": {speed}, {left}" if cut else ""))

    fits = math.floor(seconds / (cost * s0)) if seconds > 0 else 0
    if fits >= least:
        return plan(min(fits, want), s0)
    if steps and seconds > 0:
        k = math.floor(seconds / (cost * least))
        if k >= s_min:
            return plan(least, min(k, s0))
    fits = math.floor(seconds / (cost * s_min)) if seconds > 0 else 0
    if fits >= 1:
        return plan(min(fits, least), s_min)
    return PreviewPlan(0, s_min if steps else None, True, f"no samples: {speed}, {left}")


def sampler_steps(model: GenerativeModel) -> int | None:
    """The model's sampler steps per sample: its ``sample_steps`` setting (a diffusion model's
    None: all T timesteps), or None when its family has no such setting (one pass per sample)."""
    names = {f.name for f in dataclasses.fields(model.config)} if dataclasses.is_dataclass(model.config) else set()
    if "sample_steps" not in names:
        return None
    k = model.config.sample_steps
    if k is None and isinstance(model, Diffusion):
        return model.schedule.T
    return k


@contextlib.contextmanager
def steps_set(model: GenerativeModel, steps: int | None) -> Iterator[None]:
    """Inside the block the model samples with ``steps`` sampler steps (None: unchanged); a
    `Diffusion` model with fewer steps than its own samples by DDIM. Restored afterwards."""
    own = sampler_steps(model)
    if steps is None or own is None or steps == own:
        yield
        return
    before = dataclasses.asdict(model.config)
    try:
        model.config.sample_steps = steps
        if isinstance(model, Diffusion) and steps < own and getattr(model.config, "sampler", "ddim") != "ddim":
            model.config.sampler = "ddim"
        yield
    finally:
        for k in ("sample_steps", "sampler"):
            if k in before:
                setattr(model.config, k, before[k])


def timed_draw(model: GenerativeModel, n: int, steps: int | None, generator: torch.Generator) -> tuple[Tensor, float]:
    """``n`` samples drawn with ``steps`` sampler steps, and the seconds it took."""
    t0 = time.perf_counter()
    with steps_set(model, steps):
        x = model.sample(n, generator=generator)
    return x, time.perf_counter() - t0


class _OutOfTime(Exception):
    """A draw passed its deadline (raised from inside the model, between two module calls)."""


@contextlib.contextmanager
def _stop_at(deadline: float) -> Iterator[None]:
    """Inside the block every module call first checks the clock and raises `_OutOfTime` past
    ``deadline``: a sampler that loops over modules (an autoregressive model's one pass per entry,
    a diffusion chain) stops within one pass of it, whatever its family."""
    def check(module: torch.nn.Module, args: object) -> None:
        if time.perf_counter() > deadline:
            raise _OutOfTime
    hook = torch.nn.modules.module.register_module_forward_pre_hook(check)
    try:
        yield
    finally:
        hook.remove()


def preview_samples(model: GenerativeModel, seconds: float | None, *, want: int, least: int,
                    generator: torch.Generator) -> tuple[Tensor | None, PreviewPlan]:
    """Samples for a preview drawn within about ``seconds`` (None: `PREVIEW_SECONDS`).

    A pilot of `PILOT` samples at a few steps measures the speed; `plan_preview` sizes the rest.
    Neither draw runs past the allowance: each is stopped at it (`_stop_at`), between two module
    calls, and then no samples are shown. Returns (samples or None when none fit, the plan). The pilot's samples are not shown: the
    preview is the plan's draw alone, so that the same plan gives the same picture.
    """
    allowance = PREVIEW_SECONDS if seconds is None else seconds
    steps = sampler_steps(model)
    if allowance <= 0:
        return None, PreviewPlan(0, steps, True, f"no samples: the budget is spent ({allowance:.3g} s left)")
    pilot_steps = None if steps is None else min(steps, LEAST_STEPS)
    t0 = time.perf_counter()
    probe = torch.Generator(device=generator.device).manual_seed(int(generator.initial_seed()) + 1)
    try:
        with _stop_at(t0 + allowance):
            _, dt = timed_draw(model, min(PILOT, want), pilot_steps, probe)
    except _OutOfTime:
        return None, PreviewPlan(0, pilot_steps, True, f"no samples: a pilot of {min(PILOT, want)} samples did "
                                 f"not finish in the {allowance:.3g} s left")
    per_step = dt / (min(PILOT, want) * (pilot_steps or 1))
    left = allowance - (time.perf_counter() - t0)
    least_steps = None if steps is None else min(steps, max(LEAST_STEPS, steps // 20))
    plan = plan_preview(per_step, left, want=want, least=least, steps=steps, least_steps=least_steps)
    if plan.n == 0:
        return None, plan
    try:
        with _stop_at(t0 + allowance):
            x, _ = timed_draw(model, plan.n, plan.steps, generator)
    except _OutOfTime:  # slower than the pilot said (a busy machine): the command's budget still holds
        return None, PreviewPlan(0, plan.steps, True, f"no samples: the draw of {plan.n} did not finish in the "
                                 f"{allowance:.3g} s allowed")
    return x, plan
