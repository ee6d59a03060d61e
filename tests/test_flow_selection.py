"""Flows on labelled tables: the checkpoint is selected on the density that `genlab eval` reports.

By default a flow models p(x) (labels ignored), is selected on the held-out p(x) and eval reports
p(x) as ``nll_nats``; with ``conditional=True`` it models p(x | y), is selected on the held-out
p(x | y) and eval reports that as ``nll_given_label_nats``. Runs saved before the setting existed
were conditional and still load as such.
"""
from __future__ import annotations

import pytest
import torch

from genlab import make, settings
from genlab.data import load_dataset, split
from genlab.metrics.likelihood import likelihood_figures
from genlab.models.maf import MAFConfig
from genlab.models.realnvp import RealNVPConfig
from genlab.registry import get_family
from genlab.train import TrainConfig, Trainer

TINY = {"maf": {"n_layers": 2, "hidden": 16, "depth": 1}, "realnvp": {"n_layers": 2, "hidden": 16, "depth": 1}}


def _fit(family: str, **config):
    torch.manual_seed(0)
    s = split(load_dataset("iris"), seed=0)
    model = make(family, s.train.spec, seed=0, **TINY[family], **config)
    cfg = TrainConfig(seed=0, device="cpu", epochs=6, batch_size=32, progress=False, threads=1)
    tr = Trainer(model, cfg.for_family(get_family(family)))
    tr.fit(s.train.x, s.train.y, s.val.x, s.val.y)
    return tr, model, s


@pytest.mark.parametrize("family", sorted(TINY))
def test_default_flow_is_selected_on_the_p_x_that_eval_reports(family):
    tr, model, s = _fit(family)
    assert not model.conditioned, "labelled data alone must not make a flow conditional"
    figures = likelihood_figures(model, s.val.x, s.val.y)  # what `genlab eval` reports, on the validation split
    assert tr.best_val is not None
    assert tr.best_val == pytest.approx(figures["nll_nats"]["value"], abs=1e-4)
    assert "nll_given_label_nats" not in figures


def test_conditional_flow_is_selected_on_the_p_x_given_y_that_eval_reports():
    tr, model, s = _fit("maf", conditional=True)
    assert model.conditioned
    figures = likelihood_figures(model, s.val.x, s.val.y)
    assert tr.best_val == pytest.approx(figures["nll_given_label_nats"]["value"], abs=1e-4)
    assert abs(figures["nll_given_label_nats"]["value"] - figures["nll_nats"]["value"]) > 1e-3


def test_a_flow_saved_before_the_setting_loads_conditional():
    saved = {"n_layers": 2, "hidden": 16, "depth": 1, "embed_dim": 16}  # no "conditional": an older run
    for cls in (MAFConfig, RealNVPConfig):
        assert settings.build(cls, settings.saved(cls, saved)).conditional is True
    assert MAFConfig().conditional is False
