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
import json
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .. import io
from ..protocol import Batch, GenerativeModel, Loss, Objective
from . import distributed as D
from .state import join_state, split_state


class TrainingDiverged(RuntimeError):
    """A loss or a parameter became NaN/Inf; the message names the step and the checkpoint kept."""


@dataclass
class TrainConfig:
    """Settings of the trainer (the model's own hyperparameters are in its Config)."""

    epochs: int | None = field(default=None, metadata={"help": "passes over the training data (default: the family's)"})
    batch_size: int = field(default=256, metadata={"help": "examples per step (per process under torchrun)"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate (objectives may override)"})
    lr_schedule: str = field(default="constant", metadata={"help": "constant | cosine (decays to 0 over all epochs)"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    grad_clip: float | None = field(default=10.0, metadata={"help": "clip each objective's gradient norm (none: off)"})
    ema: float | None = field(default=None, metadata={"help": "EMA decay of weights for validation and the saved model, e.g. 0.999"})
    patience: int | None = field(default=10, metadata={"help": "stop after this many epochs without validation gain (none: off)"})
    checkpoint_every: int = field(default=500, metadata={"help": "steps between checkpoints (also one per epoch)"})
    log_every: int = field(default=10, metadata={"help": "steps between metrics.jsonl records"})
    seed: int = field(default=0, metadata={"help": "seed of the data order and every random draw"})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:N"})
    max_minutes: float | None = field(default=None, metadata={"help": "stop (with a checkpoint) after this wall-clock time"})
    progress: bool = field(default=True, metadata={"help": "progress bar (shown only on a terminal)"})
    compile: bool = field(default=False, metadata={
        "help": "torch.compile each gradient objective's loss (forward + backward): 1.1-1.3x faster flow "
                "steps on CPU after a first compilation of 40-170 s (seconds once cached); see bench/README.md"})
    amp: str = field(default="off", metadata={
        "help": "automatic mixed precision: off | bf16 | fp16 (fp16 adds loss scaling; CUDA only). bf16 also "
                "runs on CPUs with native bf16 matmuls (AVX512-BF16 / AMX), ignored with a warning elsewhere"})
    threads: int | None = field(default=None, metadata={
        "help": "torch threads while fit runs (default: torch's, one per core); 1 suits small models on "
                "few cores, where a second thread costs more in synchronisation than it computes"})


Callback = Callable[["Trainer", dict[str, Any]], None]


def cpu_has_bf16() -> bool:
    """Native bf16 matrix multiplies on this CPU (AVX512-BF16 or AMX; otherwise they are emulated)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` inside the block (None: unchanged), then restored."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def train_config(family: type[GenerativeModel], **overrides: Any) -> TrainConfig:
    """Trainer settings for ``family``: its ``default_train`` preferences, then ``overrides``."""
    return TrainConfig(**{**family.default_train, **overrides})


class Trainer:
    """Train ``model`` on in-memory tensors.

    Args:
        model: any registered family.
        config: `TrainConfig`.
        out: run directory for checkpoints, metrics and the saved model (None: keep in memory).
        run_info: extra JSON entries for config.json (e.g. the data set's name and split seed).
        callbacks: ``cb(trainer, record)`` after every step (record has step, epoch, losses).
    """

    def __init__(self, model: GenerativeModel, config: TrainConfig | None = None, out: str | Path | None = None,
                 run_info: dict[str, Any] | None = None, callbacks: list[Callback] | None = None):
        self.config = config or TrainConfig()
        self.rank, self.world = D.world()
        self.device = D.local_device(self.config.device)
        self.model = model.to(self.device)
        self.out = Path(out) if out is not None else None
        self.run_info = dict(run_info or {})
        self.callbacks = list(callbacks or [])
        self.epochs = self.config.epochs if self.config.epochs is not None else model.default_epochs
        self.objectives: list[Objective] = model.objectives()
        kinds = {o.full_batch for o in self.objectives}
        if len(kinds) > 1:
            raise ValueError(f"{model.name}: objectives mix full-batch and mini-batch updates")
        self.full_batch = kinds == {True}
        self.optimizers = [self._optimizer(o) for o in self.objectives]
        if self.config.amp not in ("off", "bf16", "fp16"):
            raise ValueError(f"amp must be 'off', 'bf16' or 'fp16', got {self.config.amp!r}")
        self.amp = self.config.amp if self.device.type == "cuda" or (
            self.config.amp == "bf16" and self.device.type == "cpu" and cpu_has_bf16()) else "off"
        if self.config.amp != "off" and self.amp == "off":
            why = ("fp16 applies only on CUDA" if self.config.amp == "fp16" else
                   "bf16 applies only on CUDA and on CPUs with native bf16 matmuls")
            warnings.warn(f"amp={self.config.amp!r}: {why}; training in float32 on {self.device}", stacklevel=2)
        # fp16 gradients underflow without loss scaling; bf16 has float32's range and needs none
        self.scaler = torch.amp.GradScaler("cuda") if self.amp == "fp16" else None
        # compiled only where gradients flow: closed-form / EM objectives update in place, once per epoch
        self.loss_fns = [torch.compile(o.loss) if self.config.compile and opt is not None else o.loss
                         for o, opt in zip(self.objectives, self.optimizers)]
        self.generator = torch.Generator(device=self.device).manual_seed(self.config.seed + 7919 * self.rank)
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items()} if self.config.ema else None
        self.step = self.epoch = self.batch_in_epoch = 0
        self.prepared = False  # set by prepare() (fit calls it) or by resuming
        self.t0: float | None = None
        self.seen = self.total_steps = 0  # fit sets total_steps; train_step alone: set it for a cosine lr
        self.best_val: float | None = None
        self.bad_epochs = 0
        self.finished = False
        self.stop_reason = ""
        self.last_checkpoint_step: int | None = None
        self.best_state: dict[str, Tensor] | None = None
        if self.config.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"unknown lr_schedule {self.config.lr_schedule!r}; use constant or cosine")
        if self.config.batch_size < 1 or self.epochs < 1 or self.config.checkpoint_every < 1:
            raise ValueError("batch_size, epochs and checkpoint_every must be >= 1")
        if self.config.threads is not None and self.config.threads < 1:
            raise ValueError(f"threads must be >= 1 (or None for torch's default), got {self.config.threads}")

    # -- public --------------------------------------------------------------------------------
    def fit(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None, y_val: Tensor | None = None,
            *, resume: bool = False) -> GenerativeModel:
        """Train on ``x: (n, *event_shape)`` (data space), validating on ``x_val`` each epoch.

        With ``resume=True`` the state is read from ``out/checkpoint.safetensors`` first.
        """
        with _threads(self.config.threads):  # once per fit: switching per step re-creates the thread pool
            return self._fit(x, y, x_val, y_val, resume)

    def _fit(self, x: Tensor, y: Tensor | None, x_val: Tensor | None, y_val: Tensor | None,
             resume: bool) -> GenerativeModel:
        x = self.model.check_input(x).to(self.device)
        y = y.to(self.device) if y is not None else None
        if x_val is not None:
            x_val = self.model.check_input(x_val).to(self.device)
            y_val = y_val.to(self.device) if y_val is not None else None
        if resume:
            self._load_checkpoint()
        else:
            self._prepare(x, y, x_val)
            self._truncate_metrics(0)
        if self.finished:
            return self._finish()
        self.t0, self.seen = time.perf_counter(), 0
        n_batches = 1 if self.full_batch else max(1, math.ceil(len(x) // self.world / self.config.batch_size))
        self.total_steps = self.epochs * n_batches
        bar = tqdm(total=self.total_steps, initial=self.step, desc=self.model.name, unit="step",
                   disable=not (self.config.progress and self.rank == 0 and sys.stderr.isatty()))
        try:
            while self.epoch < self.epochs and not self.finished:
                order = self._epoch_order(len(x))
                for b in range(self.batch_in_epoch, n_batches):
                    bs = len(order) if self.full_batch else self.config.batch_size
                    idx = order[b * bs:(b + 1) * bs]
                    if len(idx) == 0:
                        continue
                    record = self._step(Batch(x[idx], y[idx] if y is not None else None, self.generator),
                                        last=b == n_batches - 1)
                    self.batch_in_epoch = b + 1
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k.startswith("loss")}
                                    | {"ex/s": f"{record['examples_per_s']:.0f}"})
                    if self.step % self.config.checkpoint_every == 0:
                        self._save_checkpoint()
                    if record.get("done") or self._out_of_time():
                        break
                if self.stop_reason == "time budget":
                    self._end_of_epoch(x_val, y_val)  # validate and keep the model reached so far
                    break
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                self._end_of_epoch(x_val, y_val)
                if self.finished:
                    break
            if self.epoch >= self.epochs and not self.finished:
                self.finished, self.stop_reason = True, f"{self.epochs} epochs"
            self._save_checkpoint()
        except KeyboardInterrupt:
            self.stop_reason = "interrupted"
            self._save_checkpoint()
            raise
        finally:
            bar.close()
        return self._finish()

    def prepare(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None) -> None:
        """Fit the model's preprocessing and data-dependent initialisation to the training data
        (what `fit` does first); call it once before driving `train_step` yourself."""
        self._prepare(self.model.check_input(x).to(self.device), y.to(self.device) if y is not None else None,
                      self.model.check_input(x_val).to(self.device) if x_val is not None else None)

    def _prepare(self, x: Tensor, y: Tensor | None, x_val: Tensor | None) -> None:
        self.model.setup(x, y, x_val)
        self._reset_ema()
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
        lr_factor = self._lr_factor()
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
                D.average_gradients(obj.parameters, self.world)
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
        self._update_ema()
        self.seen += len(batch.x) * self.world
        record["examples_per_s"] = self.seen / max(time.perf_counter() - self.t0, 1e-9)
        record["time_s"] = time.perf_counter() - self.t0
        if record["done"]:
            self.finished, self.stop_reason = True, "converged"
        if self.step % self.config.log_every == 0 or record["done"] or last:
            self._log(record)
        for cb in self.callbacks:
            cb(self, record)
        return record

    def _end_of_epoch(self, x_val: Tensor | None, y_val: Tensor | None) -> None:
        val = None
        if x_val is not None:
            with self._ema_weights():
                self.model.eval()
                val = self.model.val_loss(x_val, y_val)
            if val is not None and not math.isfinite(val):
                raise self._diverged(f"the validation loss is {val}")
        improved = val is not None and (self.best_val is None or val < self.best_val)
        if improved:
            self.best_val, self.bad_epochs = val, 0
            with self._ema_weights():
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        elif val is not None:
            self.bad_epochs += 1
        self._log({"epoch": self.epoch, "step": self.step, "val_loss": val, "best_val_loss": self.best_val})
        if improved or val is None:  # keep the best model (or the latest, without a validation figure)
            self._save_model()
        if self.config.patience is not None and self.bad_epochs >= self.config.patience:
            self.finished, self.stop_reason = True, f"early stopping ({self.bad_epochs} epochs without gain)"

    # -- helpers -------------------------------------------------------------------------------
    def _autocast(self) -> torch.autocast:
        """bf16 / fp16 autocast on CUDA with ``amp`` set; a disabled context otherwise."""
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.amp != "off")

    def _optimizer(self, obj: Objective) -> torch.optim.Optimizer | None:
        if not obj.parameters:
            return None
        cls = torch.optim.AdamW if self.config.weight_decay else torch.optim.Adam
        kw = {"weight_decay": self.config.weight_decay} if self.config.weight_decay else {}
        if self.device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in obj.parameters):
            kw["fused"] = True  # one kernel for all tensors, not ~10 ops per tensor (bench/README.md)
        opt = cls(obj.parameters, lr=obj.lr or self.config.lr, betas=obj.betas or (0.9, 0.999), **kw)
        for g in opt.param_groups:
            g["initial_lr"] = g["lr"]
        return opt

    def _lr_factor(self) -> float:
        if self.config.lr_schedule == "constant" or not self.total_steps:
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * min(self.step / max(self.total_steps, 1), 1.0)))

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
        late = self.config.max_minutes is not None and time.perf_counter() - self.t0 > 60 * self.config.max_minutes
        if self.config.max_minutes is not None:
            late = D.any_rank(late, self.world, self.device)
        if late:
            self.finished, self.stop_reason = True, "time budget"
        return late

    def _diverged(self, what: str) -> TrainingDiverged:
        kept = (f"the last good checkpoint (step {self.last_checkpoint_step}) is kept in {self.out}"
                if self.last_checkpoint_step is not None else "no checkpoint had been written yet")
        return TrainingDiverged(f"training stopped at step {self.step + 1} (epoch {self.epoch}): {what}; {kept}. "
                                "Lower the learning rate (--lr), set gradient clipping, or check the data")

    def _reset_ema(self) -> None:
        if self.ema is not None:
            self.ema = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _update_ema(self) -> None:
        if self.ema is None:
            return
        d = self.config.ema
        with torch.no_grad():
            for k, v in self.model.state_dict().items():
                if v.is_floating_point():
                    self.ema[k].mul_(d).add_(v.detach(), alpha=1 - d)
                else:
                    self.ema[k].copy_(v)

    class _Swap:
        def __init__(self, trainer: "Trainer"):
            self.t = trainer

        def __enter__(self):
            if self.t.ema is not None:
                self.saved = {k: v.detach().clone() for k, v in self.t.model.state_dict().items()}
                self.t.model.load_state_dict(self.t.ema)

        def __exit__(self, *exc):
            if self.t.ema is not None:
                self.t.model.load_state_dict(self.saved)

    def _ema_weights(self) -> "_Swap":
        return Trainer._Swap(self)

    def _check_finite_weights(self) -> None:
        for name, p in self.model.named_parameters():
            if not torch.isfinite(p).all():
                raise self._diverged(f"parameter {name} holds NaN/Inf")

    # -- files ---------------------------------------------------------------------------------
    def _log(self, record: dict[str, Any]) -> None:
        if self.out is None or self.rank != 0:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def _truncate_metrics(self, step: int) -> None:
        """Drop records after ``step`` (they will be written again by the resumed run)."""
        path = self.out / "metrics.jsonl" if self.out else None
        if path is None or self.rank != 0 or not path.exists():
            return
        keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
        io.atomic_write(path, ("\n".join(keep) + "\n" if keep else "").encode())

    def _save_model(self) -> None:
        if self.out is None or self.rank != 0:
            return
        self._check_finite_weights()
        with self._ema_weights():
            io.save(self.model, self.out, trainer=asdict(self.config), **self.run_info)

    def _save_checkpoint(self) -> None:
        if self.out is None or self.rank != 0:
            return
        self._check_finite_weights()
        tensors: dict[str, Tensor] = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        skeleton = {
            "optimizers": [split_state(o.state_dict(), f"opt{i}", tensors) if o else None
                           for i, o in enumerate(self.optimizers)],
            "generator": split_state(self.generator.get_state(), "rng", tensors),
            "ema": split_state(self.ema, "ema", tensors) if self.ema is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler else None,  # a few floats: JSON
        }
        digest = io.save_tensors(self.out / "checkpoint.safetensors", tensors)
        if not (self.out / "config.json").exists():
            self._save_model()
        state = {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                 "best_val": self.best_val, "bad_epochs": self.bad_epochs, "finished": self.finished,
                 "stop_reason": self.stop_reason, "config": asdict(self.config), "state": skeleton,
                 "checkpoint_sha256": digest}
        io.write_json(self.out / "trainer.json", state)
        self.last_checkpoint_step = self.step

    def _load_checkpoint(self) -> None:
        if self.out is None:
            raise ValueError("resume needs the run directory (out=)")
        state = io.read_json(self.out / "trainer.json")
        tensors = io.load_tensors(self.out / "checkpoint.safetensors", state.get("checkpoint_sha256"))
        try:
            model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
            io.load_state(self.model, model_state, str(self.out / "checkpoint.safetensors"))
            sk = state["state"]
            for opt, s in zip(self.optimizers, sk["optimizers"]):
                if opt is not None:
                    opt.load_state_dict(join_state(s, tensors))
            self.generator.set_state(join_state(sk["generator"], tensors))
            if self.ema is not None and sk["ema"] is not None:
                self.ema = {k: v.to(self.device) for k, v in join_state(sk["ema"], tensors).items()}
            if self.scaler and sk.get("scaler"):
                self.scaler.load_state_dict(sk["scaler"])
            for k in ("step", "epoch", "batch_in_epoch", "best_val", "bad_epochs", "finished", "stop_reason"):
                setattr(self, k, state[k])
        except (KeyError, TypeError, ValueError) as e:
            raise io.CorruptFile(f"{self.out}/trainer.json does not match checkpoint.safetensors ({e})") from None
        self.model.to(self.device)
        self.last_checkpoint_step = self.step
        self.prepared = True
        if self.finished and (self.stop_reason in ("time budget", "interrupted")
                              or self.stop_reason.endswith(" epochs") and self.epoch < self.epochs):
            self.finished = False  # a resumed run goes on where the budget (or epoch count) cut it
        if self.epoch >= self.epochs:
            self.finished = True
        D.broadcast_module(self.model, self.world)
        self._truncate_metrics(self.step)

    def _finish(self) -> GenerativeModel:
        """Load the best (or EMA) weights into the model and return it."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        elif self.out is not None and (self.out / "model.safetensors").exists():
            best = io.load(self.out, map_location=self.device)
            self.model.load_state_dict(best.state_dict())
        elif self.ema is not None:
            self.model.load_state_dict(self.ema)
        return self.model.eval()
