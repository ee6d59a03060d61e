"""genlab's vae beside pythae and its ddpm beside diffusers: same networks, data, batch and steps.

    python -m bench.speed.peers_deep [--models vae,ddpm] [--repeats 3] [--vae-steps 1000] [--ddpm-steps 300]
    python -m bench.speed.peers_deep --interleave [--models vae,ddpm] [--rounds 15]

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
table gives the median of ``--repeats`` runs (bench/speed/peers.py's method). "genlab+bf16" is genlab with
``TrainConfig(amp="bf16")`` (bf16 autocast, on CPUs with native bf16 matmuls only; evaluation in
float32), to read beside the float32 rows, not as the same model. "genlab+compile" is genlab
with ``TrainConfig(compile=True)``, its rate taken after the first two (compiling) steps.

``--interleave`` (bench/speed/peers_steps.py's method): every model is built in one process and rounds
of 3 training steps on the same 3 batches alternate between genlab (``Trainer.train_step``) and
each peer (its loop's step: loss, backward, Adam); the table gives the median step time over
``--rounds`` rounds and ``train_ratio`` = peer time / genlab time (> 1: genlab faster);
``cpu_step_ms`` / ``cpu_ratio`` are the same from the thread's CPU time (``time.thread_time``;
one torch thread), which leaves out the time other jobs on a shared machine hold the core. For the
vae, "dense floor" times only what any implementation of the two MLPs must do (their forward and
backward, without the encoder's input gradient, and one fused Adam step), and ``ceiling`` = peer /
floor is the highest ratio any float32 implementation could reach; "minimal vae" adds the bound's
own elementwise work (reparameterisation, Bernoulli log-likelihood, KL), written out in a few lines;
``genlab_over_this`` = genlab's step time over theirs.
Written to bench/results/peers_deep_steps.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable

import torch
from torch import nn

from genlab.data import DataSpec, Kind, load_dataset, split
from genlab.data.datasets import Dataset
from genlab.nn import MLP
from genlab.protocol import Batch
from genlab.registry import get_family
from genlab import make
from genlab.train import TrainConfig, Trainer
from genlab.train.trainer import cpu_has_bf16

from ..common import print_table, write_results
from .timing import interleaved_runs, interleaved_steps
from .peer_models import adam_loop
from .peers import ratios

VAE = {"hidden": 256, "latent_dim": 16, "net": "mlp", "likelihood": "bernoulli", "kl_schedule": "constant"}
DDPM = {"timesteps": 1000, "channels": 32}


def _splits(model: str):
    if model == "vae":
        d = load_dataset("mnist5k")
        d = Dataset((d.x >= 128).float(), None, DataSpec((1, 28, 28), Kind.BINARY), "mnist5k-binarized")
        return split(d, seed=0), 128
    d = load_dataset("digits")
    return split(Dataset(d.x, None, DataSpec(d.spec.event_shape, d.spec.kind, d.spec.levels), "digits"), seed=0), 128


def _timed_genlab(family: str, cfg: dict, x: torch.Tensor, steps: int, batch: int, seed: int, lib: str):
    """genlab's run for ``lib``: "genlab", "genlab+compile" (rate after the two compiling steps)
    or "genlab+bf16" (``amp="bf16"``: bf16 autocast on a CPU with native bf16 matmuls)."""
    compile = lib == "genlab+compile"
    model = make(family, DataSpec(x.shape[1:], Kind.BINARY if family == "vae" else Kind.DISCRETE,
                                         2 if family == "vae" else 17), seed=seed, **cfg)
    per_epoch = len(x) // batch
    epochs = -(-steps // per_epoch)
    tc = TrainConfig(seed=seed, device="cpu", batch_size=batch, lr=1e-3, ema=None,
                      lr_schedule="constant", patience=None, progress=False, epochs=epochs, compile=compile,
                      amp="bf16" if lib == "genlab+bf16" else "off").for_family(get_family(family))
    marks: list[float] = []
    tr = Trainer(model, tc, callbacks=[lambda t, r: marks.append(time.perf_counter())])
    t0 = time.perf_counter()
    tr.fit(x[: per_epoch * batch])
    train_s, done, compile_s = time.perf_counter() - t0, epochs * per_epoch, None
    if compile:
        compile_s = marks[1] - t0 - 2 * (train_s - (marks[1] - t0)) / (done - 2)
        train_s, done = marks[-1] - marks[1], done - 2
    return model, done, train_s, compile_s


def _pythae_vae(seed: int) -> nn.Module:
    """pythae 0.1.2's VAE with genlab's two MLPs as its encoder / decoder (Bernoulli decoder: a
    sigmoid on the output, ``reconstruction_loss="bce"``)."""
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
    return PythaeVAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=16, reconstruction_loss="bce"),
                     encoder=Encoder(), decoder=Decoder())


def _diffusers_unet(widths: tuple[int, ...], seed: int) -> nn.Module:
    """diffusers' UNet2DModel for 1x8x8 images: one ResNet per down block, no attention, 8 groups."""
    from diffusers import UNet2DModel
    torch.manual_seed(seed)
    return UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
                       block_out_channels=widths, down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), add_attention=False, norm_num_groups=8)


def _ddpm_scheduler():
    from diffusers import DDPMScheduler
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02)


def run_vae(lib: str, steps: int, seed: int) -> dict:
    torch.set_num_threads(1)
    s, batch = _splits("vae")
    x, xt = s.train.x, s.test.x
    g = torch.Generator().manual_seed(2)
    if lib.startswith("genlab"):
        model, done, train_s, compile_s = _timed_genlab("vae", VAE, x, steps, batch, seed, lib)
        params = sum(p.numel() for p in model.parameters())
        t0 = time.perf_counter()
        with torch.no_grad():
            model.sample(10000, generator=torch.Generator().manual_seed(1))
            sample_s = time.perf_counter() - t0
            neg_elbo = model.elbo_loss(Batch(xt, None, g)).logs["neg_elbo"]
    else:
        model = _pythae_vae(seed)
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
    s, batch = _splits("ddpm")
    x, xt = s.train.x, s.test.x
    sched = _ddpm_scheduler()
    g = torch.Generator().manual_seed(3)  # the test figure's t and noise: the same on both sides
    t_test = torch.randint(1, 1001, (len(xt),), generator=g)
    eps_test = torch.randn(xt.shape, generator=g)
    if lib.startswith("genlab"):
        model, done, train_s, compile_s = _timed_genlab("ddpm", DDPM, x, steps, batch, seed, lib)
        params = sum(p.numel() for p in model.parameters())
        with torch.no_grad():
            z = model.pre(xt)[0]
            mse = (eps_test - model.predict_eps(model.schedule.q_sample(z, t_test, eps_test), t_test)).pow(2).mean()
            t0 = time.perf_counter()
            model.sample(16, generator=torch.Generator().manual_seed(1))
            sample_s = time.perf_counter() - t0
    else:
        unet = _diffusers_unet(tuple(int(c) for c in lib.split(" ")[1].split(",")), seed)  # "diffusers 32,64"
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


# -- step for step, in one process (--interleave) --------------------------------------------------
def steppers(model: str, x: torch.Tensor, batch: int, seed: int = 0) -> dict[str, Callable[[torch.Tensor], None]]:
    """One training step per library on a data-space batch ``(batch, 1, H, W)``."""
    spec = DataSpec(x.shape[1:], Kind.BINARY if model == "vae" else Kind.DISCRETE, 2 if model == "vae" else 17)
    out: dict[str, Callable[[torch.Tensor], None]] = {}
    for name, amp in (("genlab", "off"), ("genlab amp=bf16", "bf16")):
        if amp == "bf16" and not cpu_has_bf16():
            continue  # emulated bf16 is slow: only CPUs with native bf16 matmuls get the row
        gm = make(model, spec, seed=seed, **VAE if model == "vae" else DDPM)
        tr = Trainer(gm, TrainConfig(seed=seed, device="cpu", batch_size=batch, lr=1e-3, ema=None, amp=amp,
                                      lr_schedule="constant", patience=None, progress=False, epochs=1))
        tr.prepare(x)
        out[name] = tr.train_step
    g = torch.Generator().manual_seed(seed)

    def adam_step(module: nn.Module, loss_of: Callable[[torch.Tensor], torch.Tensor], **kw) -> Callable:
        opt = torch.optim.Adam(module.parameters(), lr=1e-3, **kw)

        def step(xb: torch.Tensor) -> None:
            loss = loss_of(xb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    if model == "vae":
        pv = _pythae_vae(seed)
        out["pythae"] = adam_step(pv, lambda xb: pv({"data": xb}).loss)
        torch.manual_seed(seed)
        enc, dec = MLP(784, 32, (256, 256)), MLP(16, 784, (256, 256))
        floor = nn.ModuleList([enc, dec])
        # the dense work: both MLPs forward and backward (no input gradient at the encoder), fused Adam;
        # a dense output gradient (a fixed random weighting), as a real loss gives, not sum()'s expanded ones
        w_out = torch.randn(batch, 784, generator=torch.Generator().manual_seed(seed)) / batch
        out["dense floor"] = adam_step(floor, lambda xb: (dec(enc(xb.flatten(1))[:, :16]) * w_out).sum(), fused=True)

        def minimal(xb: torch.Tensor) -> torch.Tensor:  # the bound written out: floor + its elementwise work
            mu, logvar = enc(xb.flatten(1)).chunk(2, 1)
            z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=g)
            rec = nn.functional.binary_cross_entropy_with_logits(dec(z), xb.flatten(1), reduction="sum")
            return (rec - 0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum()) / len(xb)
        out["minimal vae"] = adam_step(floor, minimal, fused=True)
    else:
        sched = _ddpm_scheduler()
        for widths in ((32, 64), (32, 32)):
            unet = _diffusers_unet(widths, seed)

            def loss_of(xb: torch.Tensor, unet=unet) -> torch.Tensor:
                x0 = 2 * xb / 16 - 1  # genlab's Rescale: 17 levels -> bin centres on [-1, 1]
                noise = torch.randn(x0.shape, generator=g)
                t = torch.randint(0, 1000, (len(x0),), generator=g)
                return nn.functional.mse_loss(unet(sched.add_noise(x0, noise, t), t).sample, noise)
            out["diffusers " + ",".join(map(str, widths))] = adam_step(unet, loss_of)
    return out


def measure_steps(model: str, rounds: int) -> list[dict]:
    """Median step time of every library over ``rounds`` rounds of 3 steps each, interleaved."""
    s, batch = _splits(model)
    x = s.train.x
    fns = steppers(model, x, batch)
    g = torch.Generator().manual_seed(1)
    batches = [x[torch.randint(len(x), (batch,), generator=g)] for _ in range(3)]
    med, mcpu = interleaved_steps(fns, batches, rounds)
    peer = lambda lib: lib.startswith(("pythae", "diffusers"))  # noqa: E731
    return [{"model": model, "library": lib, "batch": batch, "step_ms": 1e3 * t, "cpu_step_ms": 1e3 * mcpu[lib],
             "examples_per_s": batch / t, "rounds": rounds,
             **({"train_ratio": t / med["genlab"], "cpu_ratio": mcpu[lib] / mcpu["genlab"]} if peer(lib) else {}),
             **({"bf16_ratio": t / med["genlab amp=bf16"]} if peer(lib) and "genlab amp=bf16" in med else {}),
             **({"ceiling": t / med["dense floor"], "cpu_ceiling": mcpu[lib] / mcpu["dense floor"]}
                if peer(lib) and "dense floor" in med else {}),
             # genlab's step time over this reference's: 1 would be genlab at the floor
             **({"genlab_over_this": med["genlab"] / t} if not peer(lib) and lib != "genlab" else {})}
            for lib, t in med.items()]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="vae,ddpm")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--vae-steps", type=int, default=1000)
    p.add_argument("--ddpm-steps", type=int, default=300)
    p.add_argument("--compile", default="vae", help="models also timed with TrainConfig(compile=True)")
    p.add_argument("--bf16", default="vae,ddpm", help="models also timed with TrainConfig(amp=\"bf16\") (CPUs with "
                   "native bf16 matmuls only)")
    p.add_argument("--interleave", action="store_true", help="time single steps, interleaved in one process")
    p.add_argument("--rounds", type=int, default=15, help="--interleave: rounds of 3 steps per library")
    p.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # internal: one timed run, JSON out
    args = p.parse_args(argv)
    if args.interleave:
        torch.set_num_threads(1)
        rows = [r for model in args.models.split(",") for r in measure_steps(model, args.rounds)]
        print_table(rows, ["model", "library", "batch", "step_ms", "cpu_step_ms", "examples_per_s", "train_ratio",
                           "cpu_ratio", "bf16_ratio", "ceiling", "cpu_ceiling", "genlab_over_this"])
        write_results("peers_deep_steps", rows, "python -m bench.speed.peers_deep " + " ".join(
            argv if argv is not None else sys.argv[1:]), key=("model", "library"))
        return
    if args.one:
        model, lib, steps = json.loads(args.one[0])
        print(json.dumps((run_vae if model == "vae" else run_ddpm)(lib, steps, int(args.one[1]))))
        return
    rows = []
    for model in args.models.split(","):
        peers = {"vae": ["pythae"], "ddpm": ["diffusers 32,64", "diffusers 32,32"]}[model]
        steps = args.vae_steps if model == "vae" else args.ddpm_steps
        libs = ["genlab", *(["genlab+compile"] if model in args.compile.split(",") else []),
                *(["genlab+bf16"] if model in args.bf16.split(",") and cpu_has_bf16() else []), *peers]
        jobs = {lib: ["bench.speed.peers_deep", "--one", json.dumps([model, lib, steps])] for lib in libs}
        med = interleaved_runs(jobs, args.repeats, model)
        rows += ratios(med, "genlab", ("examples_per_s", "samples_per_s"), {"model": model, "batch": 128})
        for r in rows:
            if r["model"] == "ddpm" and r["library"] != "genlab" and "genlab" in med:
                r["sample_time_ratio"] = r["sample_s_16"] / med["genlab"]["sample_s_16"]
    print_table(rows, ["model", "library", "parameters", "examples_per_s", "examples_per_s_ratio", "compile_s",
                       "samples_per_s", "samples_per_s_ratio", "sample_s_16", "sample_time_ratio", "test_neg_elbo",
                       "test_eps_mse"])
    write_results("peers_deep", rows, "python -m bench.speed.peers_deep " + " ".join(argv if argv is not None else sys.argv[1:]),
                  key=("model", "library"))


if __name__ == "__main__":
    main()
