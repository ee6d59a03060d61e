"""gmm's covariance jitter ``reg``: chosen on validation data by default, kept when given, saved."""
import numpy as np
import pytest
import torch

import genlab
from genlab import Batch, DataSpec, make
from genlab.data import load_dataset, split
from genlab.io import load_state
from genlab.models.gmm import REG_FALLBACK, REG_GRID


def fit(model, x, x_val=None, max_steps=500):
    """setup, then EM until it reports done (as the trainer's full-batch loop does)."""
    model.setup(x, x_val=x_val)
    x = model.check_input(x)
    (em,) = model.objectives()
    for _ in range(max_steps):
        if em.loss(Batch(x, None, torch.Generator().manual_seed(0))).done:
            return model
    raise AssertionError("EM did not converge")


@pytest.fixture(scope="module")
def digits():
    return split(load_dataset("digits", n=500), seed=0)


def val_nll(model, x_val):
    return -model.log_prob(x_val).mean().item()


def test_digits_chooses_more_than_the_old_default_and_validates_better(digits):
    auto = fit(make("gmm", digits.train.spec, n_components=2), digits.train.x, digits.val.x)
    reg = float(auto.reg_used)
    assert reg > 1e-6 and reg in REG_GRID and auto.config.reg is None
    assert max(auto.reg_scores, key=auto.reg_scores.get) == reg and set(auto.reg_scores) == set(REG_GRID)
    old = fit(make("gmm", digits.train.spec, n_components=2, reg=1e-6), digits.train.x, digits.val.x)
    assert val_nll(auto, digits.val.x) <= val_nll(old, digits.val.x)
    # the search only picks the value: the fit is the one a user asking for that value gets
    given = fit(make("gmm", digits.train.spec, n_components=2, reg=reg), digits.train.x, digits.val.x)
    for k, v in auto.state_dict().items():
        torch.testing.assert_close(v, given.state_dict()[k], rtol=0, atol=0, msg=k)


def test_2d_toy_chooses_a_small_value():
    rng = np.random.default_rng(0)
    centers = np.array([[-3.0, 0.0], [3.0, 1.0], [0.0, 4.0]])
    x, x_val = (torch.from_numpy(np.concatenate([c + 0.3 * rng.standard_normal((n, 2)) for c in centers]))
                for n in (300, 100))
    model = fit(make("gmm", DataSpec((2,)), n_components=3).double(), x, x_val)
    assert float(model.reg_used) <= 1e-3, model.reg_scores


def test_given_reg_is_used_as_is_and_no_x_val_falls_back():
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((200, 2)))
    given = fit(make("gmm", DataSpec((2,)), n_components=2, reg=0.05).double(), x, x[:50])
    assert float(given.reg_used) == 0.05 and given.reg_scores == {}
    # EM adds the value itself: every covariance is at least reg on the diagonal
    cov = given.scale_tril @ given.scale_tril.transpose(1, 2)
    assert torch.linalg.eigvalsh(cov).min() >= 0.05 - 1e-9
    alone = fit(make("gmm", DataSpec((2,)), n_components=2).double(), x)
    assert float(alone.reg_used) == REG_FALLBACK and alone.reg_scores == {}
    with pytest.raises(ValueError, match="reg must be >= 0"):
        make("gmm", DataSpec((2,)), reg=-1.0)


def test_chosen_reg_survives_save_and_load(digits, tmp_path):
    model = fit(make("gmm", digits.train.spec, n_components=2), digits.train.x, digits.val.x)
    genlab.io.save(model, tmp_path)
    back = genlab.load(tmp_path)
    assert back.config.reg is None and float(back.reg_used) == float(model.reg_used) > 1e-6
    torch.testing.assert_close(back.log_prob(digits.val.x), model.log_prob(digits.val.x), rtol=0, atol=0)
    g = [torch.Generator().manual_seed(3) for _ in range(2)]
    torch.testing.assert_close(back.sample(4, generator=g[0]), model.sample(4, generator=g[1]), rtol=0, atol=0)


@pytest.mark.parametrize("old_reg", [1e-6, 1e-3])
def test_a_run_saved_before_the_search_loads_with_its_config_reg(old_reg):
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((200, 2)))
    trained = fit(make("gmm", DataSpec((2,)), n_components=2, reg=old_reg), x)
    state = {k: v for k, v in trained.state_dict().items() if k != "reg_used"}  # what such a run holds
    model = make("gmm", DataSpec((2,)), n_components=2, reg=old_reg)
    load_state(model, state, "model.safetensors")
    assert float(model.reg_used) == old_reg
    (em,) = model.objectives()  # resumed EM goes on with the old value
    em.loss(Batch(model.check_input(x), None, None))
    cov = model.scale_tril @ model.scale_tril.transpose(1, 2)
    assert torch.linalg.eigvalsh(cov).min() >= old_reg - 1e-6
