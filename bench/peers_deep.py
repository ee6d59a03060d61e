"""genlab's vae beside pythae and its ddpm beside diffusers: same networks, data, batch and steps.

    python -m bench.peers_deep [--models vae,ddpm] [--repeats 3] [--vae-steps 1000] [--ddpm-steps 300]

vae (MNIST-5k binarized at 128/255, 4,000 training images, batch 128, Adam lr 1e-3): genlab's
``vae`` (MLP encoder 784 -> 256 -> 256 -> 2x16 and decoder 16 -> 256 -> 256 -> 784, SiLU,
Bernoulli decoder, Gaussian latents, beta 1) beside pythae 0.1.2's ``VAE`` with the same two MLPs
as its custom encoder / decoder (``reconstruction_loss="bce"``: the same Bernoulli likelihood, a
sigmoid on the decoder), trained in a plain loop on ``model({"data": x}).loss``. Quality: test
-ELBO (nats, one latent draw per image) on the 500 test images.

ddpm (digits, 8x8, 17 grey levels mapped to [-1, 1], 1,437 training images, batch 128, Adam lr
1e-3, T = 1000, linear betas 1e-4..0.02, epsilon loss): genlab's ``ddpm`` (its U-Net, 32 channels,
EMA off) beside diffusers 0.42.1's ``UNet2DModel`` (one ResNet per down block, no attention,
8 groups; block_out_channels (32, 64) like genlab's widths, and (32, 32), whose parameter count is
close to genlab's) with ``DDPMScheduler.add_noise`` / ``step``. The U-Nets differ in layout
(diffusers puts two ResNets in each up block and has its own time embedding); the parameter
counts are in the table. Quality: the epsilon-prediction MSE on the 180 test images,
with the same t and noise draws on both sides. Sampling: 16 images with all 1,000 ancestral steps.

Every timed run is a fresh subprocess with one torch thread, interleaved with the others; the
table gives the median of ``--repeats`` runs (bench/peers.py's method). "genlab+compile" is genlab
with ``TrainConfig(compile=True)``, its rate taken after the first two (compiling) steps.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch
from torch import nn

from genlab.data import DataSpec, Kind, load_dataset, split
from genlab.data.datasets import Dataset
from genlab.nn import MLP
from genlab.protocol import Batch
from genlab.registry import get_family
from genlab.runs import build_model
from genlab.train import Trainer, train_config

from .common import print_table, write_results
from .peer_models import adam_loop
from .peers import interleaved, ratios

VAE = {"hidden": 256, "latent_dim": 16, "net": "mlp", "likelihood": "bernoulli", "kl_schedule": "constant"}
DDPM = {"timesteps": 1000, "channels": 32}


def _splits(model: str):
    if model == "vae":
        d = load_dataset("mnist5k")
        d = Dataset((d.x >= 128).float(), None, DataSpec((1, 28, 28), Kind.BINARY), "mnist5k-binarized")
        return split(d, seed=0), 128
    d = load_dataset("digits")
    return split(Dataset(d.x, None, DataSpec(d.spec.event_shape, d.spec.kind, d.spec.levels), "digits"), seed=0), 128


def _timed_genlab(family: str, cfg: dict, x: torch.Tensor, steps: int, batch: int, seed: int, compile: bool):
    model = build_model(family, DataSpec(x.shape[1:], Kind.BINARY if family == "vae" else Kind.DISCRETE,
                                         2 if family == "vae" else 17), cfg, seed)
    per_epoch = len(x) // batch
    epochs = -(-steps // per_epoch)
    tc = train_config(get_family(family), seed=seed, device="cpu", batch_size=batch, lr=1e-3, ema=None,
                      lr_schedule="constant", patience=None, progress=False, epochs=epochs, compile=compile)
    marks: list[float] = []
    tr = Trainer(model, tc, callbacks=[lambda t, r: marks.append(time.perf_counter())])
    t0 = time.perf_counter()
    tr.fit(x[: per_epoch * batch])
    train_s, done, compile_s = time.perf_counter() - t0, epochs * per_epoch, None
    if compile:
        compile_s = marks[1] - t0 - 2 * (train_s - (marks[1] - t0)) / (done - 2)
        train_s, done = marks[-1] - marks[1], done - 2
    return model, done, train_s, compile_s


def run_vae(lib: str, steps: int, seed: int) -> dict:
    torch.set_num_threads(1)
    s, batch = _splits("vae")
    x, xt = s.train.x, s.test.x
    g = torch.Generator().manual_seed(2)
    if lib.startswith("genlab"):
        model, done, train_s, compile_s = _timed_genlab("vae", VAE, x, steps, batch, seed, lib == "genlab+compile")
        params = sum(p.numel() for p in model.parameters())
        t0 = time.perf_counter()
        with torch.no_grad():
            model.sample(10000, generator=torch.Generator().manual_seed(1))
            sample_s = time.perf_counter() - t0
            neg_elbo = model.elbo_loss(Batch(xt, None, g)).logs["neg_elbo"]
    else:
        from pythae.models import VAE as PythaeVAE, VAEConfig
        from pythae.models.base.base_utils import ModelOutput
        from pythae.models.nn import BaseDecoder, BaseEncoder

        class Encoder(BaseEncoder):
            def __init__(self):
                super().__init__()
                self.net = MLP(784, 32, (256, 256))

            def forward(self, v):
                mu, logvar = self.net(v.flatten(1)).chunk(2, 1)
                return ModelOutput(embedding=mu, log_covariance=logvar)

        class Decoder(BaseDecoder):
            def __init__(self):
                super().__init__()
                self.net = MLP(16, 784, (256, 256))

            def forward(self, z):
                return ModelOutput(reconstruction=torch.sigmoid(self.net(z)).reshape(-1, 1, 28, 28))

        torch.manual_seed(seed)
        model = PythaeVAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=16, reconstruction_loss="bce"),
                          encoder=Encoder(), decoder=Decoder())
        params = sum(p.numel() for p in model.parameters())
        gd = torch.Generator().manual_seed(seed)
        done, train_s = adam_loop(model.parameters(), lambda xb: model({"data": xb}).loss, x, batch,
                                  -(-steps // (len(x) // batch)), gd)
        compile_s = None
        model.eval()
        with torch.no_grad():
            t0 = time.perf_counter()
            model.decoder(torch.randn(10000, 16, generator=g))  # pythae's prior sampler: N(0, I) -> decoder
            sample_s = time.perf_counter() - t0
            torch.manual_seed(2)
            neg_elbo = float(model({"data": xt}).loss)
    return {"steps": done, "examples_per_s": done * batch / train_s, "train_s": train_s, "compile_s": compile_s,
            "samples_per_s": 10000 / sample_s, "test_neg_elbo": neg_elbo, "parameters": params}


def run_ddpm(lib: str, steps: int, seed: int) -> dict:
    torch.set_num_threads(1)
    from diffusers import DDPMScheduler
    s, batch = _splits("ddpm")
    x, xt = s.train.x, s.test.x
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02)
    g = torch.Generator().manual_seed(3)  # the test figure's t and noise: the same on both sides
    t_test = torch.randint(1, 1001, (len(xt),), generator=g)
    eps_test = torch.randn(xt.shape, generator=g)
    if lib.startswith("genlab"):
        model, done, train_s, compile_s = _timed_genlab("ddpm", DDPM, x, steps, batch, seed, lib == "genlab+compile")
        params = sum(p.numel() for p in model.parameters())
        with torch.no_grad():
            z = model.pre(xt)[0]
            mse = (eps_test - model.predict_eps(model.schedule.q_sample(z, t_test, eps_test), t_test)).pow(2).mean()
            t0 = time.perf_counter()
            model.sample(16, generator=torch.Generator().manual_seed(1))
            sample_s = time.perf_counter() - t0
    else:
        from diffusers import UNet2DModel
        torch.manual_seed(seed)
        widths = tuple(int(c) for c in lib.split(" ")[1].split(","))  # "diffusers 32,64"
        unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
                           block_out_channels=widths, down_block_types=("DownBlock2D", "DownBlock2D"),
                           up_block_types=("UpBlock2D", "UpBlock2D"), add_attention=False, norm_num_groups=8)
        params = sum(p.numel() for p in unet.parameters())
        x0 = 2 * x / 16 - 1  # genlab's Rescale: 17 levels -> bin centres on [-1, 1]
        gd = torch.Generator().manual_seed(seed)

        def loss_of(xb: torch.Tensor) -> torch.Tensor:
            noise = torch.randn(xb.shape, generator=gd)
            t = torch.randint(0, 1000, (len(xb),), generator=gd)
            return nn.functional.mse_loss(unet(sched.add_noise(xb, noise, t), t).sample, noise)

        done, train_s = adam_loop(unet.parameters(), loss_of, x0, batch, -(-steps // (len(x) // batch)), gd)
        compile_s = None
        unet.eval()
        with torch.no_grad():
            zt = 2 * xt / 16 - 1
            noisy = sched.add_noise(zt, eps_test, t_test - 1)  # genlab's t = 1..T is diffusers' 0..T-1
            mse = (eps_test - unet(noisy, t_test - 1).sample).pow(2).mean()
            t0 = time.perf_counter()
            gs = torch.Generator().manual_seed(1)
            sched.set_timesteps(1000)
            v = torch.randn(16, 1, 8, 8, generator=gs)
            for t in sched.timesteps:
                v = sched.step(unet(v, t).sample, t, v, generator=gs).prev_sample
            sample_s = time.perf_counter() - t0
    return {"steps": done, "examples_per_s": done * batch / train_s, "steps_per_s": done / train_s,
            "train_s": train_s, "compile_s": compile_s, "sample_s_16": sample_s, "test_eps_mse": float(mse),
            "parameters": params}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="vae,ddpm")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--vae-steps", type=int, default=1000)
    p.add_argument("--ddpm-steps", type=int, default=300)
    p.add_argument("--compile", default="vae", help="models also timed with TrainConfig(compile=True)")
    p.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # internal: one timed run, JSON out
    args = p.parse_args(argv)
    if args.one:
        model, lib, steps = json.loads(args.one[0])
        print(json.dumps((run_vae if model == "vae" else run_ddpm)(lib, steps, int(args.one[1]))))
        return
    rows = []
    for model in args.models.split(","):
        peers = {"vae": ["pythae"], "ddpm": ["diffusers 32,64", "diffusers 32,32"]}[model]
        steps = args.vae_steps if model == "vae" else args.ddpm_steps
        libs = ["genlab", *(["genlab+compile"] if model in args.compile.split(",") else []), *peers]
        jobs = {lib: ["bench.peers_deep", "--one", json.dumps([model, lib, steps])] for lib in libs}
        med = interleaved(jobs, args.repeats, model)
        rows += ratios(med, "genlab", ("examples_per_s", "samples_per_s"), {"model": model, "batch": 128})
        for r in rows:
            if r["model"] == "ddpm" and r["library"] != "genlab" and "genlab" in med:
                r["sample_time_ratio"] = r["sample_s_16"] / med["genlab"]["sample_s_16"]
    print_table(rows, ["model", "library", "parameters", "examples_per_s", "examples_per_s_ratio", "compile_s",
                       "samples_per_s", "samples_per_s_ratio", "sample_s_16", "sample_time_ratio", "test_neg_elbo",
                       "test_eps_mse"])
    write_results("peers_deep", rows, "python -m bench.peers_deep " + " ".join(argv if argv is not None else sys.argv[1:]),
                  key=("model", "library"))


if __name__ == "__main__":
    main()
