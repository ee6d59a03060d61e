"""The rbm validates on held-out NLL and the trainer keeps its best epoch (the mechanism, not the
quality: bench/rbm_seeds.py measures that)."""
from __future__ import annotations

import pytest
import torch

from genlab import settings
from genlab.data.spec import DataSpec, Kind
from genlab.metrics.likelihood import likelihood_figures
from genlab.models.rbm import RBM, RBMConfig
from genlab.train import TrainConfig, Trainer


def _binary(n: int, seed: int) -> torch.Tensor:
    """Two noisy 10-bit prototypes."""
    g = torch.Generator().manual_seed(seed)
    proto = torch.tensor([[1.0] * 5 + [0.0] * 5, [0.0] * 5 + [1.0] * 5])
    x = proto[torch.randint(0, 2, (n,), generator=g)]
    flip = torch.rand(x.shape, generator=g) < 0.1
    return torch.where(flip, 1 - x, x)


def _fit(config: RBMConfig, epochs: int = 6):
    torch.manual_seed(0)
    x, x_val = _binary(256, 0), _binary(64, 1)
    model = RBM(DataSpec((10,), Kind.BINARY), config)
    seen: list[float] = []
    score = model.val_loss
    model.val_loss = lambda xv, yv=None: seen.append(score(xv, yv)) or seen[-1]  # record every epoch's figure
    cfg = TrainConfig(seed=0, device="cpu", epochs=epochs, batch_size=32, lr=0.05, progress=False, threads=1)
    tr = Trainer(model, cfg.for_family(RBM))
    tr.fit(x, None, x_val, None)
    return tr, model, x_val, seen


def test_rbm_keeps_the_epoch_of_best_held_out_nll():
    tr, model, x_val, seen = _fit(RBMConfig(hidden=6, chains=32))
    assert len(seen) == tr.epoch and all(v is not None for v in seen)
    assert tr.best_val == min(seen)
    # the weights the trainer leaves are that epoch's, and the figure is the NLL eval reports (exact log Z here)
    assert score_now(model, x_val) == pytest.approx(tr.best_val, abs=1e-6)
    assert likelihood_figures(model, x_val)["nll_nats"]["value"] == pytest.approx(tr.best_val, abs=1e-4)


def score_now(model: RBM, x: torch.Tensor) -> float:
    return type(model).val_loss(model, x)


def test_rbm_validates_with_ais_when_log_z_is_not_exact():
    model = RBM(DataSpec((10,), Kind.BINARY), RBMConfig(hidden=6, exact_max_hidden=2, val_ais_steps=50,
                                                        val_ais_runs=8))
    model.setup(_binary(64, 0))
    x_val = _binary(32, 1)
    a, b = model.val_loss(x_val), model.val_loss(x_val)
    assert a == b, "validation must compare epochs on the same AIS draws"
    model.config.exact_max_hidden = 6  # now enumerate the 2^6 hidden states for the reference
    with torch.no_grad():
        exact = float(model.energy(x_val).double().mean()) + model.log_z_exact()
    assert a == pytest.approx(exact, abs=0.5)  # AIS near the exact log Z on a tiny model


def test_validation_can_be_switched_off_and_older_runs_keep_the_last_epoch():
    tr, _, _, seen = _fit(RBMConfig(hidden=6, chains=32, validate=False), epochs=2)
    assert tr.best_val is None and seen == [None, None]
    assert settings.build(RBMConfig, settings.saved(RBMConfig, {"hidden": 6})).validate is False
