"""GAN losses and regularizers (identities in float64), the gan loss variants, cgan, pix2pix,
cyclegan and the `genlab translate` command."""
import numpy as np
import pytest
import torch
from torch import nn

import genlab
from genlab import NotSupported
from genlab.cli import main as cli_main
from genlab.data import load_dataset
from genlab.data.paired import make_inputs, sobel_magnitude
from genlab.data.spec import DataSpec, Kind
from genlab.objectives.gan import (critic_loss, generator_loss, gradient_penalty, orthogonal_penalty,
                                   r1_penalty, spectral_normalize)
from genlab.protocol import Batch
from genlab import make
from genlab.train import TrainConfig, Trainer

F64 = torch.float64
DIGITS = DataSpec((1, 8, 8), Kind.DISCRETE, levels=17, num_classes=10)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks run fastest on one thread (and do not fight other jobs for the cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", n=96)


# ------------------------------------------------------------------------------ losses
def test_losses_match_their_formulas():
    r, f = torch.tensor([2.0, -1.0, 0.3], dtype=F64), torch.tensor([0.5, -3.0, 1.5], dtype=F64)
    d_r, d_f = torch.sigmoid(r), torch.sigmoid(f)
    torch.testing.assert_close(critic_loss("minimax", r, f), -(d_r.log().mean() + (1 - d_f).log().mean()))
    torch.testing.assert_close(generator_loss("minimax", f), (1 - d_f).log().mean())
    torch.testing.assert_close(generator_loss("ns", f), -d_f.log().mean())
    torch.testing.assert_close(critic_loss("wgan", r, f), f.mean() - r.mean())
    hinge = torch.tensor((0 + 2 + 0.7) / 3 + (1.5 + 0 + 2.5) / 3, dtype=F64)
    torch.testing.assert_close(critic_loss("hinge", r, f), hinge)
    torch.testing.assert_close(generator_loss("hinge", f), -f.mean())
    torch.testing.assert_close(critic_loss("lsgan", r, f), ((r - 1) ** 2).mean() + (f ** 2).mean())
    with pytest.raises(ValueError, match="loss must be one of"):
        make("gan", DataSpec((2,)), seed=0, loss="wasserstein")


def linear_critic(w: torch.Tensor, b: float = 0.3):
    return lambda x: x.flatten(1) @ w + b


def test_gradient_penalty_is_zero_for_a_unit_gradient_linear_critic():
    w = torch.randn(12, generator=gen(0), dtype=F64)
    real = torch.randn(16, 3, 2, 2, generator=gen(1), dtype=F64)
    fake = torch.randn(16, 3, 2, 2, generator=gen(2), dtype=F64)
    gp = gradient_penalty(linear_critic(w / w.norm()), real, fake, gen(3))
    assert float(gp) == pytest.approx(0.0, abs=1e-24)
    gp2 = gradient_penalty(linear_critic(2 * w / w.norm()), real, fake, gen(3))  # ||grad|| = 2
    torch.testing.assert_close(gp2, torch.tensor(1.0, dtype=F64))


def test_r1_and_orthogonal_penalties_closed_forms():
    w = torch.randn(5, generator=gen(4), dtype=F64)
    x = torch.randn(7, 5, generator=gen(5), dtype=F64)
    torch.testing.assert_close(r1_penalty(linear_critic(w), x), w.pow(2).sum())
    lin = nn.Linear(4, 4).double()
    with torch.no_grad():
        lin.weight.copy_(torch.linalg.qr(torch.randn(4, 4, generator=gen(6), dtype=F64))[0] * 3)
    assert float(orthogonal_penalty(lin).detach()) == pytest.approx(0.0, abs=1e-20)  # orthogonal rows, any scale
    assert float(orthogonal_penalty(lin, off_diagonal=False).detach()) == pytest.approx(4 * (9 - 1) ** 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]))
    assert float(orthogonal_penalty(lin).detach()) == pytest.approx(2.0)  # the two off-diagonal 1s of W W^T


def test_spectral_normalisation_gives_unit_largest_singular_value():
    net = nn.Sequential(nn.Conv2d(1, 6, 3), nn.Flatten(), nn.Linear(6 * 6 * 6, 9)).double()
    with torch.no_grad():  # weights (out, in*k*k) with singular values 5, 2.5, 1.25, ...: a clear gap
        for layer in (net[0], net[2]):
            w = layer.weight.flatten(1)
            u, _, vh = torch.linalg.svd(torch.randn(w.shape, generator=gen(9), dtype=F64), full_matrices=False)
            s = 5 * 0.5 ** torch.arange(len(vh), dtype=F64)
            layer.weight.copy_((u * s @ vh).reshape(layer.weight.shape))
    spectral_normalize(net)
    x = torch.randn(4, 1, 8, 8, dtype=F64)
    for _ in range(40):  # power iterations (one per training-mode forward)
        net(x)
    for layer in (net[0], net[2]):
        raw = layer.parametrizations.weight.original.flatten(1)
        assert torch.linalg.svdvals(raw)[0] > 2  # normalisation has work to do
        sigma = torch.linalg.svdvals(layer.weight.detach().flatten(1))[0]
        assert float(sigma) == pytest.approx(1.0, abs=1e-9)


def test_weight_clipping_keeps_every_critic_weight_within_the_bound(digits):
    moons = load_dataset("moons", n=256, seed=0)
    cfg = {"loss": "wgan", "clip": 0.05, "hidden": 16, "n_critic": 3, "lr": 0.05}
    model = make("gan", moons.spec, seed=0, **cfg)
    Trainer(model, TrainConfig(epochs=3, batch_size=64, progress=False, device="cpu")).fit(moons.x)
    model.critic(moons.x[:4])  # the critic's weights are projected before every use
    weights = torch.cat([p.detach().flatten() for p in model.critic.parameters()])
    assert weights.abs().max() <= 0.05
    assert (weights.abs() == 0.05).float().mean() > 0.2  # the bound was active (lr 0.05 pushes past it)


# ------------------------------------------------------------------------------ gan variants
VARIANTS = [{"loss": "minimax"}, {"loss": "ns"}, {"loss": "wgan"}, {"loss": "wgan-gp"}, {"loss": "hinge"},
            {"loss": "lsgan"}, {"loss": "hinge", "spectral_norm": "both"}, {"loss": "ns", "r1": 1.0},
            {"loss": "ns", "ortho": 1e-3, "ortho_on": "both"}]


@pytest.mark.parametrize("cfg,data", [(c, "moons") for c in VARIANTS] + [(VARIANTS[-3], "digits")],
                         ids=lambda c: c if isinstance(c, str) else "+".join(f"{k}={v}" for k, v in c.items()))
def test_every_loss_and_regularizer_lowers_its_loss_on_a_fixed_batch(cfg, data, digits):
    ds = digits if data == "digits" else load_dataset("moons", n=96, seed=0)
    model = make("gan", ds.spec, seed=0, **{"hidden": 16, "latent_dim": 4, **cfg})
    model.setup(ds.x)
    for obj in model.objectives():
        def loss():
            return obj.loss(Batch(ds.x[:64], None, gen(3)))
        first = float(loss().value.detach())
        opt = torch.optim.Adam(obj.parameters, lr=1e-3)
        for _ in range(6):
            opt.zero_grad()
            loss().value.backward()
            opt.step()
        last = loss()
        value = float(last.value.detach())
        assert value < first, f"{obj.name}: {first} -> {value}"
        expected = {"wgan-gp": "gp", "r1": "r1", "ortho": "ortho"}
        for key, log in expected.items():
            if (cfg.get("loss") == key or cfg.get(key)) and (obj.name == "critic" or log == "ortho"):
                assert log in last.logs, (obj.name, last.logs)


# ------------------------------------------------------------------------------ cgan
@pytest.mark.parametrize("critic", ["projection", "concat"])
def test_conditional_samples_follow_the_label(critic, digits):
    model = make("cgan", digits.spec, seed=0, hidden=32, latent_dim=4, critic=critic)
    Trainer(model, TrainConfig(epochs=2, batch_size=32, progress=False, device="cpu")).fit(digits.x, digits.y)
    a = model.sample(8, condition=torch.zeros(8, dtype=torch.long), generator=gen(1))
    b = model.sample(8, condition=torch.full((8,), 7), generator=gen(1))
    assert a.shape == b.shape == (8, 1, 8, 8) and not torch.equal(a, b)
    torch.testing.assert_close(a, model.sample(8, condition=0, generator=gen(1)))
    out = model.critic(model.pre(digits.x[:4])[0], digits.y[:4])
    assert out.shape == (4,)
    unlabelled = model.critic_loss(Batch(digits.x[:8], None, gen(2)))  # the "unknown" label
    assert torch.isfinite(unlabelled.value)
    with pytest.raises(NotSupported, match="no class labels"):
        make("cgan", DataSpec((2,)), seed=0)


# ------------------------------------------------------------------------------ paired data
def test_sobel_edges_match_scipy_and_pairings_are_what_they_say():
    from scipy import ndimage

    x = torch.rand(3, 1, 9, 7, generator=gen(7), dtype=F64)
    want = np.stack([np.hypot(ndimage.sobel(im, axis=1), ndimage.sobel(im, axis=0))  # per 2-D image
                     for im in x[:, 0].numpy()])[:, None]
    np.testing.assert_allclose(sobel_magnitude(x).numpy(), want, atol=1e-12)
    img = torch.randint(0, 17, (2, 1, 8, 8), generator=gen(8)).float()
    edges = make_inputs(img, "edges", 17)
    assert edges.shape == img.shape and edges.max() == 16 and (edges == edges.round()).all()
    low = make_inputs(img, "lowres", 17, factor=2)
    assert (low[:, :, ::2, ::2] == low[:, :, 1::2, 1::2]).all()  # constant 2x2 blocks
    torch.testing.assert_close(low[0, 0, 0, 0], img[0, 0, :2, :2].mean().round())
    masked = make_inputs(img, "masked", 17)
    assert (masked[:, :, 2:6, 2:6] == 0).all() and torch.equal(masked[:, :, :2], img[:, :, :2])


# ------------------------------------------------------------------------------ translators
def test_pix2pix_shapes_training_and_translation(digits):
    model = make("pix2pix", digits.spec, seed=0, base=8, pairing="edges")
    assert model.generator(torch.zeros(3, 1, 28, 28)).shape == (3, 1, 28, 28)  # any size
    assert model.critic(torch.zeros(3, 2, 8, 8)).shape == (3, 1, 2, 2)  # patch logits
    before = model.val_loss(digits.x[:32])
    Trainer(model, TrainConfig(epochs=15, batch_size=32, progress=False, device="cpu", patience=None)).fit(
        digits.x[32:], None, digits.x[:32])
    assert model.val_loss(digits.x[:32]) < 0.8 * before  # held-out L1 falls
    out = model.translate(model.inputs(digits.x[:5]))
    assert out.shape == (5, 1, 8, 8) and (out == out.round()).all() and out.min() >= 0 and out.max() <= 16
    assert model.sample(4, generator=gen(0)).shape == (4, 1, 8, 8)
    with pytest.raises(NotSupported, match="density"):
        model.log_prob(digits.x[:2])
    with pytest.raises(NotSupported, match="vectors"):
        make("pix2pix", DataSpec((2,)), seed=0)


@pytest.fixture(scope="module")
def digits_mnist():
    """Unpaired domains: A = 16 digits, B = 16 MNIST images put onto the 8x8 grid and 17 levels."""
    return load_dataset("digits+mnist5k", n=16)


def test_cyclegan_shapes_and_cycle_reconstruction_on_a_tiny_batch(digits_mnist):
    ds = digits_mnist
    model = make("cyclegan", ds.spec, seed=0, base=8, identity_weight=0.0)
    model.setup(ds.x, ds.y)
    torch.testing.assert_close(model.domain_b_images, ds.x[ds.y == 1])  # B comes from the data
    a = model.pre(ds.x[ds.y == 0])[0]

    def cycle_error():
        with torch.no_grad():
            return float((model.g_ba(model.g_ab(a)) - a).abs().mean())
    assert model.g_ab(a).shape == model.d_a(a).shape[:1] + (1, 8, 8)
    assert model.d_b(a).shape == (16, 1, 2, 2)
    first = cycle_error()
    opts = {o.name: (o, torch.optim.Adam(o.parameters, lr=3e-3, betas=(0.5, 0.999))) for o in model.objectives()}
    assert set(opts) == {"critic_a", "critic_b", "generators"}
    for step in range(20):
        for obj, opt in opts.values():
            opt.zero_grad()
            obj.loss(Batch(ds.x, ds.y, gen(step))).value.backward()
            opt.step()
    assert cycle_error() < 0.4 * first  # 0.82 -> 0.21 on [-1, 1] pixels (seed 1: 0.82 -> 0.19)
    for direction in ("a2b", "b2a"):
        out = model.translate(ds.x[:3], direction)
        assert out.shape == (3, 1, 8, 8) and (out == out.round()).all()
    assert model.sample(5, generator=gen(1)).shape == (5, 1, 8, 8)


def test_cyclegan_reads_the_domain_of_each_example_from_its_label(digits_mnist):
    ds = digits_mnist
    model = make("cyclegan", ds.spec, seed=0, base=8, stored_images=10)
    model.setup(ds.x, ds.y)
    torch.testing.assert_close(model.domain_a_images, ds.x[:10])
    torch.testing.assert_close(model.domain_b_images, ds.x[16:26])

    def pair(x, y):
        a, b = model._pair(Batch(x, y, gen(0)))
        return model.pre.inverse(a), model.pre.inverse(b)

    def stored(rows, images):
        return all((images == r).flatten(1).all(1).any() for r in rows)
    mixed = torch.tensor([0, 17, 3, 20, 5])
    a, b = pair(ds.x[mixed], ds.y[mixed])
    torch.testing.assert_close(a, ds.x[[0, 3, 5]])
    torch.testing.assert_close(b, ds.x[[17, 20]])
    a, b = pair(ds.x[16:20], ds.y[16:20])  # a short batch without A: A comes from the stored images
    torch.testing.assert_close(b, ds.x[16:20])
    assert len(a) == 4 and stored(a, model.domain_a_images)
    a, b = pair(ds.x[16:20], None)  # no domain labels: the batch is domain A
    torch.testing.assert_close(a, ds.x[16:20])
    assert len(b) == 4 and stored(b, model.domain_b_images)
    with pytest.raises(ValueError, match="pass their labels"):
        model.setup(ds.x)
    three = DataSpec((1, 8, 8), Kind.DISCRETE, levels=17, num_classes=3, domains=("a", "b", "c"))
    with pytest.raises(NotSupported, match="two domains"):
        make("cyclegan", three, seed=0)


def test_cyclegan_on_one_image_set_translates_to_a_derived_view(digits):
    for view in ("edges", "masked"):
        model = make("cyclegan", digits.spec, seed=0, base=8, stored_images=20, derived_domain=view)
        model.setup(digits.x, digits.y)  # class labels of one domain are not domains
        torch.testing.assert_close(model.domain_b_images, make_inputs(digits.x[:20], view, 17))
        a, b = model._pair(Batch(digits.x[:7], digits.y[:7], gen(0)))
        torch.testing.assert_close(model.pre.inverse(a), digits.x[:7])
        assert len(b) == 7 and all((model.domain_b_images == r).flatten(1).all(1).any()
                                   for r in model.pre.inverse(b))
    with pytest.raises(ValueError, match="derived_domain"):
        make("cyclegan", digits.spec, seed=0, derived_domain="fashion-mnist")


def test_a_cyclegan_run_saved_with_the_old_settings_loads(tmp_path, digits):
    from genlab import io
    model = make("cyclegan", digits.spec, seed=0, base=8)
    model.setup(digits.x)
    model.set_domain_b(digits.x.flip(-1)[:12])  # what an old run stored: its B images, by name
    io.save(model, tmp_path)
    cfg = io.read_json(tmp_path / "config.json")
    cfg["config"].pop("derived_domain")
    cfg["config"]["n_b"] = cfg["config"].pop("stored_images")
    cfg["config"]["domain_b"] = "fashion-mnist"
    state = {("bank_b" if k == "domain_b_images" else k): v for k, v in model.state_dict().items()
             if k != "domain_a_images"}
    cfg["model_sha256"] = io.save_tensors(tmp_path / "model.safetensors", state)
    io.write_json(tmp_path / "config.json", cfg)
    (tmp_path / "manifest.json").unlink()  # such runs were written before manifests
    with pytest.warns(UserWarning, match="domain_b is no longer a setting.*digits\\+mnist5k"):
        back = genlab.load(tmp_path)
    assert back.config.stored_images == model.config.stored_images and len(back.domain_a_images) == 0
    torch.testing.assert_close(back.domain_b_images, model.domain_b_images)
    torch.testing.assert_close(back.sample(6, generator=gen(2)), model.sample(6, generator=gen(2)))


def test_a_pix2pix_run_saved_with_the_old_names_loads(tmp_path, digits):
    from genlab import io
    model = make("pix2pix", digits.spec, seed=0, base=8, stored_images=8)
    model.setup(digits.x[8:], None, digits.x[:8])
    io.save(model, tmp_path)
    cfg = io.read_json(tmp_path / "config.json")
    cfg["config"]["bank"] = cfg["config"].pop("stored_images")
    state = {("bank" if k == "stored_targets" else k): v for k, v in model.state_dict().items()}
    cfg["model_sha256"] = io.save_tensors(tmp_path / "model.safetensors", state)
    io.write_json(tmp_path / "config.json", cfg)
    (tmp_path / "manifest.json").unlink()  # such runs were written before manifests
    back = genlab.load(tmp_path)
    assert back.config == model.config
    torch.testing.assert_close(back.stored_targets, digits.x[:8])
    torch.testing.assert_close(back.sample(5, generator=gen(3)), model.sample(5, generator=gen(3)))


def test_cli_trains_cyclegan_on_two_domains_and_translates_both_ways(tmp_path, digits_mnist):
    run = tmp_path / "cg"
    assert cli_main(["train", "cyclegan", "--data", "digits+mnist5k", "--n", "40", "--epochs", "1",
                     "--set", "base=8", "--out", str(run), "--no-progress"]) == 0
    model = genlab.load(run)
    assert model.spec.domains == ("digits", "mnist5k") and len(model.domain_b_images) > 0
    np.save(tmp_path / "mnist.npy", digits_mnist.x[16:19].numpy())
    assert cli_main(["translate", str(run), str(tmp_path / "mnist.npy"), "--out", str(tmp_path / "a.npy")]) == 0
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "a.npy")),
                               model.translate(digits_mnist.x[16:19], "b2a"))


def test_cli_translate_and_estimator(tmp_path, digits, capsys):
    run = tmp_path / "p2p"
    assert cli_main(["train", "pix2pix", "--data", "digits", "--n", "96", "--epochs", "1", "--set", "base=8",
                     "--out", str(run), "--no-progress"]) == 0
    model = genlab.load(run)
    np.save(tmp_path / "in.npy", model.inputs(digits.x[:3]).numpy())
    assert cli_main(["translate", str(run), str(tmp_path / "in.npy"), "--out", str(tmp_path / "out.npy")]) == 0
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "out.npy")),
                               model.translate(model.inputs(digits.x[:3])))
    from PIL import Image
    Image.fromarray(np.uint8(model.inputs(digits.x[:1])[0, 0].numpy() * 255 / 16)).save(tmp_path / "edge.png")
    assert cli_main(["translate", str(run), str(tmp_path / "edge.png")]) == 0
    assert (tmp_path / "edge_translated.png").exists()
    assert cli_main(["translate", str(run), str(tmp_path / "in.txt")]) == 2
    assert ".png, .jpg or .npy" in capsys.readouterr().err
    est = genlab.Estimator("pix2pix", epochs=1, base=8).fit(digits.x.numpy())
    assert est.sample(3, random_state=0).shape == (3, 1, 8, 8)
    with pytest.raises(NotSupported, match="density"):
        est.score_samples(digits.x[:3].numpy())
