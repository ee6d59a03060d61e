"""DDPM / DDIM: schedule identities, samplers with oracle noise predictors, the variational bound."""
from __future__ import annotations

import math

import pytest
import torch

import genlab
from genlab import DataSpec, NotSupported
from genlab.data import load_dataset
from genlab.nn.unet import UNet, auto_levels
from genlab.objectives.diffusion import discretized_gaussian_log_lik, simple_loss, variational_bound
from genlab.protocol import Batch
from genlab import make
from genlab.samplers.diffusion import DDIMSampler, DDPMSampler, NoiseSchedule

F64 = torch.float64


def gaussian_oracle(schedule: NoiseSchedule, mu: float, s2: float):
    """The optimal noise predictor E[eps | x_t] for data N(mu, s2): linear in x_t."""
    def eps(x, t):
        ab = schedule.at("abar", t, x)
        return (1 - ab).sqrt() * (x - ab.sqrt() * mu) / (ab * s2 + 1 - ab)
    return eps


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("T", [20, 1000])
def test_alpha_bar_is_decreasing_from_one_to_near_zero(kind, T):
    s = NoiseSchedule.make(kind, T)
    assert (s.betas > 0).all() and (s.betas < 1).all()
    assert (s.abar[1:] < s.abar[:-1]).all() and s.abar[0] < 1
    assert s.abar[-1] < 0.01
    torch.testing.assert_close(s.respace(s.timesteps(T)).betas, s.betas)


def test_q_sample_moments_by_sampling():
    s = NoiseSchedule.make("linear", 100)
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([[-1.0, 0.5, 2.0]], dtype=F64).expand(200_000, 3)
    for step in (1, 30, 100):
        t = torch.full((len(x0),), step)
        xt = s.q_sample(x0, t, torch.randn(x0.shape, generator=g, dtype=F64))
        ab = float(s.abar[step - 1])
        torch.testing.assert_close(xt.mean(0), math.sqrt(ab) * x0[0], atol=0.01, rtol=0)
        torch.testing.assert_close(xt.var(0), torch.full((3,), 1 - ab, dtype=F64), atol=0.01, rtol=0)


@pytest.mark.parametrize("step", [2, 10, 50])
def test_posterior_matches_gaussian_conditioning(step):
    """q(x_{t-1} | x_t, x_0) from the joint Gaussian of (x_{t-1}, x_t) given x_0, in float64, and
    by regressing sampled x_{t-1} on x_t."""
    s = NoiseSchedule.make("cosine", 50)
    i = step - 1
    ab_prev, ab, alpha = s.abar_prev[i], s.abar[i], s.alphas[i]
    cov = alpha.sqrt() * (1 - ab_prev)  # Cov(x_{t-1}, x_t | x_0)
    var_post = (1 - ab_prev) - cov**2 / (1 - ab)
    # mean = sqrt(ab_prev) x0 + cov / (1 - ab) (x_t - sqrt(ab) x0)
    c_t = cov / (1 - ab)
    c_0 = ab_prev.sqrt() - c_t * ab.sqrt()
    torch.testing.assert_close(s.post_var[i], var_post)
    torch.testing.assert_close(s.post_ct[i], c_t)
    torch.testing.assert_close(s.post_c0[i], c_0)
    g = torch.Generator().manual_seed(1)
    x0 = torch.full((400_000, 1), 0.7, dtype=F64)
    x_prev = s.q_sample(x0, torch.full((len(x0),), step - 1), torch.randn(x0.shape, generator=g, dtype=F64))
    x_t = alpha.sqrt() * x_prev + (1 - alpha).sqrt() * torch.randn(x0.shape, generator=g, dtype=F64)
    mean, var = s.posterior(x0, x_t, torch.full((len(x0),), step))
    resid = x_prev - mean
    assert abs(float(resid.mean())) < 5e-3 * math.sqrt(float(var_post)) + 1e-3
    assert abs(float(resid.var() / var.flatten()[0]) - 1) < 0.02
    assert abs(float(torch.corrcoef(torch.cat([resid, x_t], 1).T)[0, 1])) < 0.01


def test_discretized_gaussian_sums_to_one_over_levels():
    L = 17
    centres = (-1 + 2 * torch.arange(L, dtype=F64) / (L - 1))[:, None]
    for mean, std in [(0.0, 1.0), (0.93, 1e-4), (-2.0, 0.01), (5.0, 0.3), (0.031, 3e-3)]:
        lp = discretized_gaussian_log_lik(centres, torch.tensor(mean, dtype=F64), torch.tensor(std, dtype=F64), L)
        assert torch.isfinite(lp).all()
        torch.testing.assert_close(lp.exp().sum(), torch.tensor(1.0, dtype=F64))


def test_an_oracle_model_on_a_single_point_recovers_it_with_ddim():
    spec = DataSpec((2,))
    model = make("ddpm", spec, seed=0, timesteps=50, sampler="ddim", sample_steps=10).double()
    point = torch.tensor([[3.0, -1.5]], dtype=F64)
    model.setup(point.expand(16, 2))
    s = model.schedule
    # every example is the same point: in model space x_0 = 0, so eps = x_t / sqrt(1 - abar_t)
    model.predict_eps = lambda x, t, y=None: x / (1 - s.at("abar", t, x)).sqrt()
    x = model.sample(64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, point.expand(64, 2), atol=1e-9, rtol=0)


def test_ddim_with_eta_one_is_ddpm_with_the_posterior_variance():
    s = NoiseSchedule.make("linear", 100)
    fn = gaussian_oracle(s, 0.5, 0.3)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    a = DDPMSampler(s, variance="posterior").sample(fn, (4000, 1), g(), dtype=F64)
    b = DDIMSampler(s, eta=1.0).sample(fn, (4000, 1), g(), dtype=F64)
    torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-9)  # the same chain, the same draws


def test_ddim_with_eta_one_and_all_steps_matches_ddpm_statistics():
    """With the exact noise predictor for N(mu, s2) data and T = 1000, DDPM (sigma_t^2 = beta_t),
    DDIM with eta = 1 (sigma_t^2 = tilde beta_t) and eta = 0 all give N(mu, s2) samples; DDIM
    with 100 of the 1000 steps stays within 10% of the variance."""
    mu, s2, n = 0.5, 0.3, 4000
    s = NoiseSchedule.make("linear", 1000)
    fn = gaussian_oracle(s, mu, s2)
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    ddpm = DDPMSampler(s).sample(fn, (n, 1), g(), dtype=F64)
    ddim1 = DDIMSampler(s, eta=1.0).sample(fn, (n, 1), g(), dtype=F64)
    ddim0 = DDIMSampler(s, eta=0.0).sample(fn, (n, 1), g(), steps=100, dtype=F64)
    for x in (ddpm, ddim1, ddim0):
        assert abs(float(x.mean()) - mu) < 0.05 and abs(float(x.var()) / s2 - 1) < 0.1
    assert abs(float(ddpm.var() - ddim1.var())) / s2 < 0.1


def test_ddim_encoding_of_gaussian_data_is_standard_normal_and_decodes_back():
    mu, s2 = 0.5, 0.3
    s = NoiseSchedule.make("linear", 200)
    fn = gaussian_oracle(s, mu, s2)
    x0 = mu + math.sqrt(s2) * torch.randn(5000, 1, generator=torch.Generator().manual_seed(5), dtype=F64)
    d = DDIMSampler(s)
    z = d.encode(fn, x0)
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1) < 0.05
    back = d.sample(fn, x0.shape, None, x_T=z, dtype=F64)
    assert float((back - x0).abs().mean()) < 0.02


def test_bound_with_the_optimal_predictor_is_close_to_and_below_log_p():
    """1-D Gaussian data through the model (standardization and its log-det included): the bound
    with the analytic eps predictor is within 0.1 nats of the true log-likelihood and not above it."""
    mu, sd, n = 3.0, 0.5, 40_000
    spec = DataSpec((1,))
    model = make("ddpm", spec, seed=0, timesteps=100).double()
    x = mu + sd * torch.randn(n, 1, generator=torch.Generator().manual_seed(6), dtype=F64)
    model.setup(x)
    m_z = float((mu - model.pre.mean) / model.pre.std)
    s2_z = float((sd / model.pre.std) ** 2)
    fn = gaussian_oracle(model.schedule, m_z, s2_z)
    model.predict_eps = lambda x_t, t, y=None: fn(x_t, t)
    gap = model.log_prob(x) - torch.distributions.Normal(mu, sd).log_prob(x).flatten()
    m, se = float(gap.mean()), float(gap.std() / math.sqrt(n))
    assert -0.1 < m < 3 * se, (m, se)


def test_monte_carlo_bound_is_unbiased():
    s = NoiseSchedule.make("linear", 60)
    fn = gaussian_oracle(s, 0.0, 0.5)
    x0 = math.sqrt(0.5) * torch.randn(64, 1, generator=torch.Generator().manual_seed(7), dtype=F64)
    g = torch.Generator().manual_seed(8)
    mc = torch.stack([variational_bound(fn, s, x0, timesteps=4, generator=g).mean() for _ in range(300)])
    exact = torch.stack([variational_bound(fn, s, x0, generator=g).mean() for _ in range(40)])
    diff = float(mc.mean() - exact.mean())
    se = math.sqrt(float(mc.var()) / len(mc) + float(exact.var()) / len(exact))
    assert abs(diff) < 4 * se, (diff, se)
    with pytest.raises(ValueError, match="bound_timesteps"):
        variational_bound(fn, s, x0, timesteps=61)


@pytest.mark.parametrize("data", ["moons", "digits"])
def test_the_bound_improves_over_training_on_a_fixed_batch(data):
    ds = load_dataset(data, n=64, seed=0)
    model = make("ddpm", ds.spec, seed=0, timesteps=20, hidden=64, depth=2, channels=8)
    model.setup(ds.x, ds.y)

    def neg_bound():
        with torch.no_grad():
            return float(-model.log_prob(ds.x).mean())
    before = neg_bound()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        opt.zero_grad()
        model.denoising_loss(Batch(ds.x, ds.y, g)).value.backward()
        opt.step()
    after = neg_bound()
    assert after < before - 0.05 * abs(before), (before, after)


def test_classifier_free_guidance_mixes_conditional_and_unconditional():
    ds = load_dataset("digits", n=32)
    model = make("ddpm", ds.spec, seed=0, timesteps=10, channels=8)
    torch.nn.init.normal_(model.net.out.weight, std=0.1)  # a non-trivial output
    x, t, y = torch.randn(4, 1, 8, 8), torch.tensor([1, 4, 7, 10]), torch.tensor([0, 3, 5, 9])
    null = torch.full((4,), 10)
    with torch.no_grad():
        want = 3.0 * model.predict_eps(x, t, y) - 2.0 * model.predict_eps(x, t, null)
        torch.testing.assert_close(model.eps_fn(y, 4, x.device, guidance=2.0)(x, t), want)
        torch.testing.assert_close(model.eps_fn(None, 4, x.device, guidance=2.0)(x, t), model.predict_eps(x, t, null))
    # p_uncond = 1: the labels never reach the network, so the loss ignores them
    model = make("ddpm", ds.spec, seed=0, timesteps=10, channels=8, p_uncond=1.0)
    torch.nn.init.normal_(model.net.out.weight, std=0.1)
    la = model.denoising_loss(Batch(ds.x, ds.y, torch.Generator().manual_seed(0))).value
    lb = model.denoising_loss(Batch(ds.x, torch.zeros_like(ds.y), torch.Generator().manual_seed(0))).value
    torch.testing.assert_close(la, lb)


def test_unlabelled_data_train_an_unconditional_model():
    model = make("ddpm", DataSpec((2,)), seed=0, timesteps=10)
    assert model.net.emb.classes is None
    with pytest.raises(NotSupported, match="without labels"):
        model.sample(2, condition=torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("shape,levels", [((1, 8, 8), 1), ((1, 28, 28), 2), ((3, 7, 7), 0), ((1, 25, 25), 0)])
def test_unet_keeps_the_shape(shape, levels):
    assert auto_levels(*shape[1:]) == levels
    net = UNet(shape[0], shape[1:], channels=8, num_classes=10)
    torch.nn.init.normal_(net.out.weight, std=0.1)
    out = net(torch.randn(2, *shape), torch.tensor([1.0, 500.0]), torch.tensor([3, 10]))
    assert out.shape == (2, *shape) and torch.isfinite(out).all()


def test_bad_settings_are_refused_clearly():
    spec = DataSpec((2,))
    with pytest.raises(ValueError, match=r"ddpm\.sampler must be one of 'ddpm', 'ddim'; got 'euler'"):
        make("ddpm", spec, seed=0, sampler="euler")
    with pytest.raises(ValueError, match="sample_steps must be >= 1"):
        make("ddpm", spec, seed=0, timesteps=10, sample_steps=0)
    with pytest.raises(ValueError, match="bound_timesteps must lie in 1..timesteps"):
        make("ddpm", spec, seed=0, timesteps=10, bound_timesteps=11)
    assert make("ddpm", spec, seed=0, timesteps=10, sample_steps=11).sample_steps == 10  # capped at T
    with pytest.raises(ValueError, match=r"ddpm\.schedule must be one of 'auto', 'linear', 'cosine'; got 'quadratic'"):
        make("ddpm", spec, seed=0, schedule="quadratic")
    with pytest.raises(NotSupported, match="does not model categorical"):
        make("ddpm", DataSpec((4,), kind="categorical", levels=3), seed=0)
    assert genlab.get_family("ddpm").density is genlab.Density.BOUND


def test_simple_loss_of_the_zero_predictor_is_one():
    s = NoiseSchedule.make("linear", 50)
    x0 = torch.randn(20_000, 4, generator=torch.Generator().manual_seed(9), dtype=F64)
    loss = simple_loss(lambda x, t: torch.zeros_like(x), s, x0, torch.Generator().manual_seed(1))
    assert abs(float(loss.mean()) - 1) < 0.02


def test_levels_denoiser_is_exact_at_small_noise_whatever_the_network():
    ds = load_dataset("digits")
    model = make("ddpm", ds.spec, seed=0, timesteps=1000).double()
    torch.nn.init.normal_(model.net.out.weight, std=1.0)  # arbitrary logits
    z, _ = model.pre(model.check_input(ds.x[:20]).double(), torch.Generator().manual_seed(0))
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
    t, null = torch.ones(20, dtype=torch.long), torch.full((20,), 10)
    # at t = 1 the noise (std ~0.006) is far below the half gap between levels (1/16): x0 is known
    assert torch.allclose(model.predict_eps(model.schedule.q_sample(z, t, eps), t, null), eps, atol=1e-6)


def test_levels_denoiser_with_zero_logits_is_the_uniform_model():
    # zero logits: the exact denoiser of independent uniform levels, so the bound is close to
    # log2(levels) bits/dim (the discrete-time gap is what remains)
    ds = load_dataset("digits")
    model = make("ddpm", ds.spec, seed=0, timesteps=1000)
    assert not model.net.out.weight.any()
    x = model.check_input(ds.x[:8])
    z, logdet = model.pre(x, torch.Generator().manual_seed(0))
    with torch.no_grad():
        bits = -(model.bound(z, None, torch.Generator().manual_seed(1)) + logdet).mean() / (64 * math.log(2))
    assert abs(float(bits) - math.log2(17)) < 0.15


def test_a_run_saved_before_the_levels_denoiser_loads_as_the_noise_predictor_it_was(tmp_path):
    from genlab import io

    spec = DataSpec(event_shape=(1, 4, 4), kind="discrete", levels=5)
    old = make("ddpm", spec, seed=0, denoiser="eps", timesteps=20, hidden=16)
    io.save(old, tmp_path / "run")
    cfg = io.read_json(tmp_path / "run" / "config.json")
    del cfg["config"]["denoiser"]  # as a run written before the setting existed
    io.write_json(tmp_path / "run" / "config.json", cfg)
    (tmp_path / "run" / "manifest.json").unlink()  # such runs were written before manifests
    back = io.load(tmp_path / "run")
    assert back.config.denoiser == "eps"
    assert make("ddpm", spec, seed=0, timesteps=20, hidden=16).config.denoiser == "levels"  # new runs
    x = torch.randint(0, 5, (3, 1, 4, 4)).float()
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    assert torch.equal(back.log_prob(x, generator=g()), old.log_prob(x, generator=g()))


def test_default_ddim_sampling_of_continuous_data_with_the_optimal_predictor_keeps_the_data_scale():
    """Continuous data get the linear schedule by default: with the analytic eps predictor off by
    0.01 (as a trained network is), 20 DDIM steps keep the data's mean and spread (under the cosine
    schedule the first, unclipped x0 prediction at alpha_bar_T ~ 0 multiplies that error by ~10^3)."""
    mu, sd = 3.0, 0.5
    model = make("ddpm", DataSpec((1,)), seed=0).double()
    x = mu + sd * torch.randn(4000, 1, generator=torch.Generator().manual_seed(2), dtype=F64)
    model.setup(x)
    fn = gaussian_oracle(model.schedule, float((mu - model.pre.mean) / model.pre.std),
                         float((sd / model.pre.std) ** 2))
    model.predict_eps = lambda x_t, t, y=None: fn(x_t, t) + 0.01
    s = model.sample(4000, generator=torch.Generator().manual_seed(3)).double()
    assert abs(float(s.mean()) - mu) < 0.05 and abs(float(s.std()) / sd - 1) < 0.1, (float(s.mean()), float(s.std()))


def test_eps_denoiser_bound_on_discrete_data_clips_x0_as_the_sampler_does():
    """An eps model whose noise predictions are those of the exact denoiser of independent uniform
    levels (the levels denoiser with zero logits) plus 0.1, about a trained network's error at
    t = T: its bound stays near log2(levels) bits/dim. Unclipped, x0_hat at the cosine schedule's
    alpha_bar_T ~ 1e-8 is off by ~10^3 and the step t = T alone costs ~5 nats per entry."""
    ds = load_dataset("digits")
    uniform = make("ddpm", ds.spec, seed=0, timesteps=100)
    model = make("ddpm", ds.spec, seed=0, timesteps=100, denoiser="eps")
    model.predict_eps = lambda x_t, t, y=None: uniform.predict_eps(x_t, t, y) + 0.1
    z, logdet = model.pre(model.check_input(ds.x[:8]), torch.Generator().manual_seed(0))
    with torch.no_grad():
        bits = -(model.bound(z, None, torch.Generator().manual_seed(1)) + logdet).mean() / (64 * math.log(2))
    assert abs(float(bits) - math.log2(17)) < 0.3, float(bits)


def test_clipping_x0_in_the_bound_is_the_bound_of_the_clipped_predictor():
    # clip(x0_hat) is the projection onto a box holding x0: per draw it can only raise the bound,
    # and it scores exactly the predictor whose eps is recomputed from the clipped x0 (as DDIM does)
    s = NoiseSchedule.make("cosine", 30)
    x0 = (torch.randint(0, 5, (16, 3), generator=torch.Generator().manual_seed(0)) / 2 - 1).to(F64)
    raw = lambda x, t: 0.7 * x + 0.3  # noqa: E731  (x0_hat far outside [-1, 1] at large t)

    def clipped(x, t):
        ab = s.at("abar", t, x)
        return (x - ab.sqrt() * s.predict_x0(x, t, raw(x, t)).clamp(-1, 1)) / (1 - ab).sqrt()
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    lb_clip = variational_bound(raw, s, x0, levels=5, generator=g(), clip=(-1.0, 1.0))
    assert torch.allclose(lb_clip, variational_bound(clipped, s, x0, levels=5, generator=g()), rtol=1e-9, atol=1e-9)
    assert (lb_clip > variational_bound(raw, s, x0, levels=5, generator=g())).all()
