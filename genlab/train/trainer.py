"""ONE trainer for every family (nothing in this file knows about any model).

It steps each of the model's `Objective`s in order with one optimizer each, clips gradients,
keeps an optional EMA of the weights, validates every epoch with early stopping, writes
``metrics.jsonl``, checkpoints atomically every N steps, stops on a NaN/Inf loss without
overwriting the last good checkpoint, and resumes exactly: the data order is a function of
(seed, epoch), the noise generator's state is checkpointed, so a resumed run ends with the same
weights as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from ..protocol import Batch, GenerativeModel, Loss, Objective
from .. import rundir
from ..data import stream
from . import checkpoint, optim
from . import distributed as D
from .config import TrainConfig
from .ema import EMA
from .hardware import cpu_has_bf16, threads_held
from .progress import Progress
from .signals import Deferred, deferred_signals
from . import tblog
from .stop import StopReason


class TrainingDiverged(RuntimeError):
    """A loss or a parameter became NaN/Inf; the message names the step and the checkpoint kept."""


Callback = Callable[["Trainer", dict[str, Any]], None]


class Trainer:
    """Train ``model`` on in-memory tensors.

    Args:
        model: any registered family.
        config: `TrainConfig`; every setting it was not given takes the family's preference
            (``default_train``, ``default_epochs``), so this trains a family as ``genlab train`` does.
        out: run directory for checkpoints, metrics and the saved model (None: keep in memory).
        run_info: extra JSON entries for config.json (e.g. the data set's name and split seed).
        callbacks: ``cb(trainer, record)`` after every step (record has step, epoch, losses).
        deadline: a `time.monotonic` instant at which training stops as if its budget ran out (what
            a command that must also draw samples within ``--max-minutes`` passes; not saved).
    """

    def __init__(self, model: GenerativeModel, config: TrainConfig | None = None, out: str | Path | None = None,
                 run_info: dict[str, Any] | None = None, callbacks: list[Callback] | None = None,
                 deadline: float | None = None):
        # the family's own trainer preferences fill every setting the caller did not give
        self.config = (config or TrainConfig()).for_family(type(model))
        self.rank, self.world = D.world()
        self.device = D.local_device(self.config.device)
        self.model = model.to(self.device)
        self.out = Path(out) if out is not None else None
        self.run_info = dict(run_info or {})
        self.callbacks = list(callbacks or [])
        self.deadline = deadline
        self.epochs = self.config.epochs
        self.objectives: list[Objective] = model.objectives()
        kinds = {o.full_batch for o in self.objectives}
        if len(kinds) > 1:
            raise ValueError(f"{model.name}: objectives mix full-batch and mini-batch updates")
        self.full_batch = kinds == {True}
        self.optimizers = [optim.make(o, self.config, self.device) for o in self.objectives]
        self.amp = self.config.amp if self.device.type == "cuda" or (
            self.config.amp == "bf16" and self.device.type == "cpu" and cpu_has_bf16()) else "off"
        if self.config.amp != "off" and self.amp == "off":
            why = ("fp16 applies only on CUDA" if self.config.amp == "fp16" else
                   "bf16 applies only on CUDA and on CPUs with native bf16 matmuls")
            warnings.warn(f"amp={self.config.amp!r}: {why}; training in float32 on {self.device}", stacklevel=2)
        # fp16 gradients underflow without loss scaling; bf16 has float32's range and needs none
        self.scaler = torch.amp.GradScaler("cuda") if self.amp == "fp16" else None
        # compiled only where gradients flow: closed-form / EM objectives update in place, once per epoch
        self.loss_fns = D.wrap_objectives(self.objectives, [
            torch.compile(o.loss) if self.config.compile and opt is not None else o.loss
            for o, opt in zip(self.objectives, self.optimizers)], self.device, self.world)
        self.generator = torch.Generator(device=self.device).manual_seed(self.config.seed + 7919 * self.rank)
        self.ema = EMA(model, self.config.ema) if self.config.ema else None
        self.step = self.epoch = self.batch_in_epoch = 0
        self.prepared = False  # set by prepare() (fit calls it) or by resuming
        self.t0: float | None = None
        self.seen = self.total_steps = 0  # fit sets total_steps; train_step alone: set it for a cosine lr
        self.best_val: float | None = None
        self.bad_epochs = 0
        self.finished = False
        self.stopped: StopReason | None = None  # decides whether a resume goes on
        self.stop_reason = ""  # the same, in words for people (config.json, the command line)
        self.last_checkpoint_step: int | None = None
        self.best_state: dict[str, Tensor] | None = None
        self.stop_state: dict[str, Tensor] | None = None  # a time-budget stop's model, when best
        self.model_from_stop = False  # model.safetensors holds that model, not the best epoch's
        self.generation: int | None = None  # of the run directory, last committed or read
        self.val_seconds: float | None = None  # the last validation's duration
        self.stop_val: float | None = None  # the validation loss a time-budget stop measured
        self.n_val, self.step0 = 0, 0
        if self.config.batch_size < 1 or self.epochs < 1 or self.config.checkpoint_every < 1:
            raise ValueError("batch_size, epochs and checkpoint_every must be >= 1")
        if self.config.threads is not None and self.config.threads < 1:
            raise ValueError(f"threads must be >= 1 (or None for torch's default), got {self.config.threads}")
        tblog.check(self.config, self.out)  # a missing tensorboard package fails here, before any training
        self.tb: tblog.Events | None = None  # TensorBoard's writer while fit trains (tblog.open_events)

    # -- public --------------------------------------------------------------------------------
    def fit(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None, y_val: Tensor | None = None,
            *, resume: bool = False) -> GenerativeModel:
        """Train on ``x: (n, *event_shape)`` (data space), validating on ``x_val`` each epoch.

        With ``resume=True`` the state is read from ``out/checkpoint.safetensors`` first.
        """
        with threads_held(self.config.threads):  # once per fit: switching per step re-creates the thread pool
            return self._fit(x, y, x_val, y_val, resume)

    def _fit(self, x: Tensor, y: Tensor | None, x_val: Tensor | None, y_val: Tensor | None,
             resume: bool) -> GenerativeModel:
        x_val, y_val = stream.in_memory(x_val, y_val)  # a streamed validation set: its first VAL_LIMIT examples
        if not stream.streamed(x):  # a stream is read, checked and moved batch by batch (stream.Feed)
            x = self.model.check_input(x).to(self.device)
        elif self.full_batch:
            stream.refuse_whole(self.model.name)
        y = y.to(self.device) if y is not None else None
        if x_val is not None:
            x_val = self.model.check_input(x_val).to(self.device)
            y_val = y_val.to(self.device) if y_val is not None else None
        writes = self.out is not None and self.rank == 0
        with rundir.lock(self.out) if writes else contextlib.nullcontext(), deferred_signals() as signals:
            if writes:
                rundir.recover(self.out)  # what a killed writer left: finish its commit or drop it
            if resume:
                checkpoint.load(self)
                self.prepared = True
                D.broadcast_module(self.model, self.world)
            else:
                if writes and ((self.out / rundir.MANIFEST).exists() or (self.out / "config.json").exists()):
                    raise ValueError(f"{self.out} already holds a run; resume it (fit(..., resume=True), "
                                     "`genlab resume`) or choose another out=")
                self._prepare(x, y, x_val)
                checkpoint.truncate_metrics(self, 0)
                checkpoint.save(self, with_model=True)  # generation 1: a kill from here on is resumable
            if not self.finished:
                self._loop(x, y, x_val, y_val, signals)
            D.barrier(self.world)  # rank 0's last files are written before any rank reads the best weights
            return self._finish()

    def _loop(self, x: Tensor, y: Tensor | None, x_val: Tensor | None, y_val: Tensor | None,
              signals: Deferred) -> None:
        self.t0, self.seen, self.stop_state, self.step0 = time.perf_counter(), 0, None, self.step
        self.n_val = 0 if x_val is None else len(x_val)
        n_batches = 1 if self.full_batch else max(1, math.ceil(len(x) // self.world / self.config.batch_size))
        self.total_steps = self.epochs * n_batches
        feed = stream.Feed(x, y, workers=self.config.workers, device=self.device, check=self.model.check_input,
                           seed=self.config.seed, whole=self.full_batch, name=self.model.name)
        bar = Progress(total=self.total_steps, initial=self.step, desc=self.model.name, unit="step",
                       budget_s=None if self.config.max_minutes is None else 60 * self.config.max_minutes,
                       enabled=self.config.progress and self.rank == 0)
        try:
            self.tb = tblog.open_events(self)  # after the checkpoint's load: purges what the resume redoes
            while self.epoch < self.epochs and not self.finished:
                order = self._epoch_order(len(x))
                bs = len(order) if self.full_batch else self.config.batch_size
                for b, xb, yb in feed.batches(order, self.batch_in_epoch, n_batches, bs):
                    record = self._step(Batch(xb, yb, self.generator), last=b == n_batches - 1)
                    self.batch_in_epoch = b + 1
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k.startswith("loss")}
                                    | {"ex/s": f"{record['examples_per_s']:.0f}"})
                    # between two steps the checkpoint is exact; under torchrun all ranks stop together
                    if D.any_rank(signals.received is not None, self.world, self.device) and not self.finished:
                        self.stopped, self.stop_reason = StopReason.INTERRUPTED, f"interrupted ({signals.name or 'on another rank'})"
                        checkpoint.save(self)
                        raise KeyboardInterrupt
                    if self.step % self.config.checkpoint_every == 0:
                        checkpoint.save(self)
                    if record.get("done") or self.finished or self._out_of_time():
                        break
                if self.stopped is StopReason.TIME_BUDGET:
                    self._budget_stop(x_val, y_val)
                    break
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                improved = self._end_of_epoch(x_val, y_val)
                if self.epoch >= self.epochs and not self.finished:
                    self._stop(StopReason.EPOCHS, f"{self.epochs} epochs")
                checkpoint.save(self, with_model=improved)  # one per epoch, with the model when it improved
        finally:
            bar.close()
            feed.close()  # stops the DataLoader's workers
            tblog.close(self)  # after the last checkpoint: closing cannot lose it

    def prepare(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None) -> None:
        """Fit the model's preprocessing and data-dependent initialisation to the training data
        (what `fit` does first); call it once before driving `train_step` yourself."""
        self._prepare(self.model.check_input(x).to(self.device), y.to(self.device) if y is not None else None,
                      self.model.check_input(x_val).to(self.device) if x_val is not None else None)

    def _prepare(self, x: Tensor, y: Tensor | None, x_val: Tensor | None) -> None:
        if stream.streamed(x):  # statistics and data-dependent init from a documented sample of the stream
            x, y = stream.setup_sample(x, y, seed=self.config.seed)
            x, y = self.model.check_input(x).to(self.device), (y.to(self.device) if y is not None else None)
        self.model.setup(x, y, x_val)
        if self.ema is not None:
            self.ema.reset()
        D.broadcast_module(self.model, self.world)
        self.prepared = True

    def train_step(self, x: Tensor, y: Tensor | None = None) -> dict[str, Any]:
        """One update of every objective on the batch ``x: (batch, *event_shape)`` (data space),
        as inside `fit` (clipping, AMP, EMA, logging, callbacks), without validation or
        checkpoints. Call `prepare` (or `fit`) first. A cosine lr decays over ``trainer.total_steps``,
        which `fit` sets; left at 0, the lr stays constant. Returns the step's record."""
        if not self.prepared:
            raise RuntimeError("train_step needs the model prepared for the data: call trainer.prepare(x_train) "
                               "(or trainer.fit) first")
        if self.t0 is None:  # driven without fit: the clock starts now; no cosine horizon unless set
            self.t0, self.seen = time.perf_counter(), 0
        x = self.model.check_input(x).to(self.device)
        return self._step(Batch(x, y.to(self.device) if y is not None else None, self.generator))

    # -- one step ------------------------------------------------------------------------------
    def _step(self, batch: Batch, last: bool = False) -> dict[str, Any]:
        self.model.train()
        record: dict[str, Any] = {"step": self.step + 1, "epoch": self.epoch}
        lr_factor = optim.lr_factor(self.config.lr_schedule, self.step, self.total_steps)
        for obj, opt, loss_fn in zip(self.objectives, self.optimizers, self.loss_fns):
            if self.step % obj.every:
                continue
            with self._autocast():
                loss = loss_fn(batch)
            loss = loss if isinstance(loss, Loss) else Loss(loss)
            if not torch.isfinite(loss.value.detach()).all():
                raise self._diverged(f"the {obj.name!r} loss is {loss.value.item()}")
            if opt is not None:
                for g in opt.param_groups:
                    g["lr"] = g["initial_lr"] * lr_factor
                opt.zero_grad(set_to_none=True)
                (self.scaler.scale(loss.value) if self.scaler else loss.value).backward()
                if self.scaler:
                    self.scaler.unscale_(opt)  # clip the true gradients
                if self.config.grad_clip:  # foreach: one norm kernel over all tensors, not one per tensor
                    gn = torch.nn.utils.clip_grad_norm_(obj.parameters, self.config.grad_clip, foreach=True)
                    record[f"grad_norm/{obj.name}"] = float(gn)
                if self.scaler:
                    self.scaler.step(opt)  # skipped when a scaled gradient overflowed
                    self.scaler.update()
                else:
                    opt.step()
            record[f"loss/{obj.name}"] = float(loss.value.detach())
            record.update({f"{obj.name}/{k}": v for k, v in loss.logs.items()})
            record["done"] = record.get("done", False) or loss.done
        self.step += 1
        if self.ema is not None:
            self.ema.update()
        self.seen += len(batch.x) * self.world
        record["examples_per_s"] = self.seen / max(time.perf_counter() - self.t0, 1e-9)
        record["time_s"] = time.perf_counter() - self.t0
        if record["done"]:
            self._stop(StopReason.CONVERGED)
        if self.step % self.config.log_every == 0 or record["done"] or last:
            checkpoint.log(self, record)
        for cb in self.callbacks:
            cb(self, record)
        return record

    def _validate(self, x_val: Tensor | None, y_val: Tensor | None) -> float | None:
        if x_val is None:
            return None
        t = time.perf_counter()
        with self.ema_weights():
            self.model.eval()
            val = self.model.val_loss(x_val, y_val)
        self.val_seconds = time.perf_counter() - t  # what a budget keeps back for the last validation
        if val is not None and not math.isfinite(val):
            raise self._diverged(f"the validation loss is {val}")
        return val

    def _end_of_epoch(self, x_val: Tensor | None, y_val: Tensor | None) -> bool:
        """Validate, keep the best weights, count epochs without gain; returns whether the model
        is to be saved (it improved, or there is no validation figure: keep the latest)."""
        val = self._validate(x_val, y_val)
        improved = val is not None and (self.best_val is None or val < self.best_val)
        if improved:
            self.best_val, self.bad_epochs = val, 0
            with self.ema_weights():
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        elif val is not None:
            self.bad_epochs += 1
        checkpoint.log(self, {"epoch": self.epoch, "step": self.step, "val_loss": val, "best_val_loss": self.best_val})
        if self.config.patience is not None and self.bad_epochs >= self.config.patience:
            self._stop(StopReason.EARLY_STOPPING, f"early stopping ({self.bad_epochs} epochs without gain)")
        if improved or val is None:
            self.model_from_stop = False
        return improved or val is None

    def _budget_stop(self, x_val: Tensor | None, y_val: Tensor | None) -> None:
        """The time budget ran out inside an epoch: keep the model reached so far when it is the
        best, and checkpoint. The epoch's bookkeeping (best, epochs without gain) is left as it
        was, so a resumed run goes on exactly as an uninterrupted one would; a resumed run that
        finishes puts its best epoch back in model.safetensors (`_finish`)."""
        left = self._seconds_left()  # already past the budget (an epoch's validation took it): keep the latest
        skip = x_val is not None and left is not None and left <= 0
        val = self.stop_val = None if skip else self._validate(x_val, y_val)
        better = val is None or self.best_val is None or val < self.best_val
        checkpoint.log(self, {"epoch": self.epoch, "step": self.step, "val_loss": val, "best_val_loss": self.best_val,
                              "stop": "time budget"} | ({"validation": "skipped: no time left"} if skip else {}))
        if better:
            with self.ema_weights():
                self.stop_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.model_from_stop = True
        checkpoint.save(self, with_model=better)

    def request_stop(self, why: str) -> None:
        """End training after the current step (for a callback); ``why`` is recorded as the reason."""
        self._stop(StopReason.REQUESTED, why)

    def _stop(self, reason: StopReason, words: str | None = None) -> None:
        self.finished, self.stopped, self.stop_reason = True, reason, words or reason.value

    # -- helpers -------------------------------------------------------------------------------
    def _autocast(self) -> torch.autocast:
        """bf16 / fp16 autocast on CUDA with ``amp`` set; a disabled context otherwise."""
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.amp != "off")

    def _epoch_order(self, n: int) -> Tensor:
        """The data order of this epoch: a function of (seed, epoch) only, split across ranks."""
        if self.full_batch:  # closed forms / EM see all the data, on every rank alike
            return torch.arange(n, device=self.device)
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.epoch)
        order = torch.randperm(n, generator=g)
        if self.world > 1:  # distributed sampler: equal shares, every rank sees different examples
            order = order[: n - n % self.world][self.rank::self.world]
        return order.to(self.device)

    def _out_of_time(self) -> bool:
        """The budget (`max_minutes` from the first step) or the caller's ``deadline`` has passed;
        under torchrun every rank stops with the first that runs out."""
        if self.config.max_minutes is None and self.deadline is None:
            return False
        late = self._seconds_left() <= self._validation_reserve()  # the budget stop's validation must fit too
        late = D.any_rank(late, self.world, self.device)
        if late:
            self._stop(StopReason.TIME_BUDGET)
        return late

    def _seconds_left(self) -> float | None:
        """Seconds until the budget or the deadline, whichever comes first (None: neither is set)."""
        left = [] if self.config.max_minutes is None else [60 * self.config.max_minutes - (time.perf_counter() - self.t0)]
        left += [] if self.deadline is None else [self.deadline - time.monotonic()]
        return min(left) if left else None

    def _validation_reserve(self) -> float:
        """Seconds the last validation took, or before the first one an estimate from the step
        time (a validation batch costs about half a training step: forward only)."""
        if not self.n_val:
            return 0.0
        if self.val_seconds is not None:
            return self.val_seconds
        step_s = (time.perf_counter() - self.t0) / max(self.step - self.step0, 1)
        return 0.5 * step_s * math.ceil(self.n_val / self.config.batch_size)

    def _diverged(self, what: str) -> TrainingDiverged:
        kept = (f"the last good checkpoint (step {self.last_checkpoint_step}) is kept in {self.out}"
                if self.last_checkpoint_step is not None else "no checkpoint had been written yet")
        return TrainingDiverged(f"training stopped at step {self.step + 1} (epoch {self.epoch}): {what}; {kept}. "
                                "Lower the learning rate (--lr), set gradient clipping, or check the data")

    def ema_weights(self) -> contextlib.AbstractContextManager:
        """Inside the block the model holds its EMA weights (its own weights without an EMA)."""
        return self.ema.swapped_in() if self.ema is not None else contextlib.nullcontext()

    def check_finite_weights(self) -> None:
        """Raise `TrainingDiverged` (naming the parameter) when a weight holds NaN/Inf."""
        for name, p in self.model.named_parameters():
            if not torch.isfinite(p).all():
                raise self._diverged(f"parameter {name} holds NaN/Inf")

    def _finish(self) -> GenerativeModel:
        """Load the weights the run hands back (the model reached when a time budget stopped it
        at its best, else the best validated, else the EMA) and return the model. A finished run
        whose model.safetensors still holds a budget stop's model gets its best epoch's back."""
        best = self.stop_state if self.stop_state is not None else checkpoint.best_weights(self)
        if best is not None:
            self.model.load_state_dict(best)
        if self.finished and self.model_from_stop and self.best_state is not None:
            self.model_from_stop = False
            checkpoint.save_model(self, ema=False)
        return self.model.eval()
