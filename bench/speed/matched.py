"""Re-measurement of three speed figures, every library on one thread, sizes matched and printed.

    python -m bench.speed.matched [--cases gmm,kde,nsf] [--rounds 5] [--gmm-iters 20]

Every side runs in this one process with ``torch.set_num_threads(1)`` and
``threadpoolctl.threadpool_limits(1)`` (numpy / scipy / scikit-learn BLAS and OpenMP pinned to one
thread as torch is), interleaved round by round (bench/speed/timing.py); the tables give the median
wall and thread-CPU time per round.

- gmm: 128 full-covariance components on moons (10,000 training points, 2-D) and 8 on digits
  (1,437 training images, 64-D), genlab's EM step
  (``GMM._em_step``) beside scikit-learn's ``GaussianMixture.fit`` from the same initialisation
  (genlab's k-means, passed as weights / means / precisions) for the same number of EM iterations
  (``tol`` never met), in float64 and float32; the per-example train log-likelihoods of the
  float64 fits are compared. Both fit the same model: the parameter count is printed.
- kde: bandwidth chosen from genlab's 20 candidates by validation likelihood (fit) and scoring the
  test split, genlab's ``KDE`` beside ``sklearn.neighbors.KernelDensity``, float64.
- nsf vs normflows, one training step (loss, backward, Adam) on the same batches: genlab's nsf (6
  layers: ActNorm, LU, rational-quadratic coupling with a 2 x 128 SiLU MLP, 8 bins, tail bound 3);
  normflows' ``CoupledRationalQuadraticSpline`` as bench/speed/peer_models.py builds it (a
  ResidualNet conditioner, one hidden layer more, and ``apply_unconditional_transform=True``: a
  second, unconditional spline on the untouched half); and normflows matched (its
  ``PiecewiseRationalQuadraticCoupling`` with genlab's MLP and no unconditional spline). Parameter
  counts and the matmul FLOPs of one step (``torch.utils.flop_counter.FlopCounterMode``) are
  printed beside the times.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Callable

import torch
from torch import Tensor, nn

from ..common import data_splits, print_table, write_results
from .peer_models import _IgnoreContext, mlp, nsf_normflows
from .peers import FLOW_CONFIG, FLOW_DATA, build_genlab
from .timing import interleaved_steps


def _load() -> float:
    return os.getloadavg()[0]


def gmm_case(rounds: int, iters: int, dtype: torch.dtype, components: int = 128, data: str = "moons") -> list[dict]:
    from sklearn.mixture import GaussianMixture
    from genlab import make
    from genlab.protocol import Batch
    s = data_splits(data, n=12500 if data == "moons" else None)
    x = s.train.x.to(dtype)
    model = make("gmm", s.train.spec, seed=0, n_components=components).to(dtype)  # _em_step ignores tol
    model.setup(x)
    w0, mu0, L0 = model.weights.clone(), model.means.clone(), model.scale_tril.clone()
    # the data EM fits: discrete data dequantized with the init seed's noise, as GMM._em_step does
    z = model.pre(x, torch.Generator().manual_seed(model.config.init_seed))[0].reshape(len(x), -1)
    zn = z.numpy()
    prec0 = torch.cholesky_inverse(L0).numpy()
    w_np = w0.double().numpy()
    w_np = w_np / w_np.sum()  # scikit-learn checks the sum to float64 precision
    batch = Batch(x)
    holder: dict = {}

    def genlab_fit(_) -> None:
        model._set(w0, mu0, L0)
        for _ in range(iters):
            model._em_step(batch)

    def sklearn_fit(_) -> None:
        sk = GaussianMixture(components, covariance_type="full", tol=0.0, reg_covar=model.config.reg, max_iter=iters,
                             weights_init=w_np, means_init=mu0.numpy(), precisions_init=prec0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tol=0 never "converges": a fixed iteration count
            sk.fit(zn)
        holder["sk"] = sk

    l0 = _load()
    wall, cpu = interleaved_steps({"genlab": genlab_fit, "sklearn": sklearn_fit}, [None], rounds)
    dim = z.shape[1]
    params = components * (1 + dim + dim * (dim + 1) // 2)  # weight, mean, covariance of each Gaussian
    from genlab.models.gmm import component_log_prob  # both fits scored on the same model-space points
    ll_g = torch.logsumexp(component_log_prob(z, model.means, model.scale_tril) + model.weights.log(), 1).double()
    ll_s = torch.from_numpy(holder["sk"].score_samples(zn)).double()
    diff = (ll_g - ll_s).abs().max().item()
    name = str(dtype).removeprefix("torch.")
    return [{"case": f"gmm {data} {name}", "library": lib, "iters": iters, "parameters": params, "round_s": wall[lib],
             "cpu_s": cpu[lib], "per_iter_ms": 1e3 * cpu[lib] / iters,
             **({"ratio": cpu["sklearn"] / cpu["genlab"], "wall_ratio": wall["sklearn"] / wall["genlab"],
                 "max_abs_ll_diff": diff, "sklearn_n_iter": int(holder["sk"].n_iter_)} if lib == "sklearn" else {}),
             "rounds": rounds, "load_start": l0, "load_end": _load()} for lib in ("genlab", "sklearn")]


def kde_case(rounds: int) -> list[dict]:
    from sklearn.neighbors import KernelDensity
    from genlab import make
    from genlab.train import TrainConfig, Trainer
    s = data_splits("moons", n=12500)
    xt, xv, xs = s.train.x.double(), s.val.x.double(), s.test.x.double()
    model = make("kde", s.train.spec, seed=0).double()
    Trainer(model, TrainConfig(device="cpu", progress=False)).fit(xt, None, xv)
    z, zv = (model.pre(v, None)[0].numpy() for v in (xt, xv))
    zt, logdet = model.pre(xs, None)
    zt = zt.numpy()
    cands = [float(h) for h in model.candidates()]
    holder: dict = {}

    def genlab_fit(_) -> None:
        m = make("kde", s.train.spec, seed=0).double()
        Trainer(m, TrainConfig(device="cpu", progress=False)).fit(xt, None, xv)
        holder["g"] = m

    def sklearn_fit(_) -> None:
        scores = [KernelDensity(bandwidth=h).fit(z).score_samples(zv).mean() for h in cands]
        holder["h"] = cands[int(torch.tensor(scores).argmax())]
        holder["kd"] = KernelDensity(bandwidth=holder["h"]).fit(z)

    l0 = _load()
    fw, fc = interleaved_steps({"genlab": genlab_fit, "sklearn": sklearn_fit}, [None], rounds)
    g, kd = holder["g"], holder["kd"]
    sw, sc = interleaved_steps({"genlab": lambda _: g.log_prob(xs), "sklearn": lambda _: kd.score_samples(zt)},
                               [None], 5 * rounds)
    diff = (g.log_prob(xs) - (torch.from_numpy(kd.score_samples(zt)) + logdet)).abs().max().item()
    rows = []
    for lib in ("genlab", "sklearn"):
        rows.append({"case": "kde", "library": lib, "fit_s": fw[lib], "fit_cpu_s": fc[lib], "score_s": sw[lib],
                     "score_cpu_s": sc[lib], "n_train": len(xt), "n_test": len(xs),
                     "bandwidth": float(g.bandwidth) if lib == "genlab" else holder["h"],
                     **({"fit_ratio": fc["sklearn"] / fc["genlab"], "score_ratio": sc["sklearn"] / sc["genlab"],
                         "max_abs_ll_diff": diff} if lib == "sklearn" else {}),
                     "rounds": rounds, "load_start": l0, "load_end": _load()})
    return rows


def nsf_normflows_matched(dim: int, n_layers: int, hidden: int, depth: int, bins: int = 8, bound: float = 3.0):
    """normflows' own layers (ActNorm, LULinearPermute, PiecewiseRationalQuadraticCoupling) with
    genlab's conditioner (an MLP of ``depth`` hidden layers) and no unconditional spline."""
    import normflows as nf
    from normflows.flows.neural_spline.coupling import PiecewiseRationalQuadraticCoupling
    from normflows.utils.masks import create_alternating_binary_mask

    class Coupling(nf.flows.Flow):
        def __init__(self, reverse: bool):
            super().__init__()
            self.prqct = PiecewiseRationalQuadraticCoupling(
                mask=create_alternating_binary_mask(dim, even=reverse),
                transform_net_create_fn=lambda i, o: _IgnoreContext(mlp(i, o, hidden, depth)),
                num_bins=bins, tails="linear", tail_bound=bound, apply_unconditional_transform=False)

        def forward(self, z, context=None):
            z, log_det = self.prqct.inverse(z, context)
            return z, log_det.view(-1)

        def inverse(self, z, context=None):
            z, log_det = self.prqct(z, context)
            return z, log_det.view(-1)

    flows: list[nn.Module] = []
    for k in range(n_layers):
        flows += [nf.flows.ActNorm((dim,)), nf.flows.LULinearPermute(dim), Coupling(k % 2 == 1)]
    model = nf.NormalizingFlow(nf.distributions.DiagGaussian(dim, trainable=False), flows)
    return model, model.log_prob, None


def _flops(step: Callable[[Tensor], None], xb: Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc:
        step(xb)
    return fc.get_total_flops()


def nsf_case(data: str, rounds: int) -> list[dict]:
    from genlab.data.preprocess import Preprocess, default_preprocess
    from genlab.train import TrainConfig, Trainer
    n, batch, _ = FLOW_DATA[data]
    s = data_splits(data, n=n)
    x, cfg = s.train.x, FLOW_CONFIG["nsf"]
    gm = build_genlab("nsf", s.train.spec, seed=0)
    tr = Trainer(gm, TrainConfig(seed=0, device="cpu", batch_size=batch, lr=1e-3, lr_schedule="constant",
                                 patience=None, progress=False, epochs=1))
    tr.prepare(x)
    fns: dict[str, Callable[[Tensor], None]] = {"genlab": tr.train_step}
    params = {"genlab": sum(p.numel() for p in gm.parameters())}
    pre = default_preprocess(s.train.spec) if s.train.spec.is_discrete else Preprocess()
    pre.fit(x)
    g = torch.Generator().manual_seed(0)
    for lib, build in (("normflows (its coupling)", nsf_normflows), ("normflows matched", nsf_normflows_matched)):
        torch.manual_seed(0)
        module, log_prob, _ = build(s.train.spec.dim, **cfg)
        params[lib] = sum(p.numel() for p in module.parameters())
        opt = torch.optim.Adam(module.parameters(), lr=1e-3)

        def step(xb: Tensor, log_prob=log_prob, opt=opt) -> None:
            z, logdet = pre(xb, g)
            loss = -(log_prob(z.flatten(1)) + logdet).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        fns[lib] = step
    gb = torch.Generator().manual_seed(1)
    batches = [x[torch.randint(len(x), (batch,), generator=gb)] for _ in range(3)]
    flops = {lib: _flops(f, batches[0]) for lib, f in fns.items()}
    l0 = _load()
    wall, cpu = interleaved_steps(fns, batches, rounds)
    return [{"case": f"nsf {data}", "library": lib, "batch": batch, "parameters": params[lib],
             "gflop_step": flops[lib] / 1e9, "step_ms": 1e3 * wall[lib], "cpu_step_ms": 1e3 * cpu[lib],
             **({"ratio": cpu[lib] / cpu["genlab"], "wall_ratio": wall[lib] / wall["genlab"],
                 "flop_ratio": flops[lib] / max(flops["genlab"], 1)} if lib != "genlab" else {}),
             "rounds": rounds, "load_start": l0, "load_end": _load()} for lib in fns]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default="gmm,kde,nsf")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--gmm-iters", type=int, default=20)
    p.add_argument("--gmm-dtypes", default="float64,float32")
    p.add_argument("--gmm-data", default="moons,digits",
                   help="moons: 2-D, where scikit-learn's loop over components dominates; digits: 64-D, BLAS-bound")
    p.add_argument("--nsf-data", default="moons,digits")
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits
    torch.set_num_threads(1)
    rows: list[dict] = []
    cases = args.cases.split(",")
    with threadpool_limits(1):
        if "gmm" in cases:
            for data in args.gmm_data.split(","):
                for d in args.gmm_dtypes.split(","):
                    # digits: 8 components (~180 images each); 128 leave too few per component for a
                    # full 64-D covariance, and scikit-learn's Cholesky fails
                    rows += gmm_case(args.rounds, args.gmm_iters, getattr(torch, d), data=data,
                                     components=128 if data == "moons" else 8)
                print_table(rows[-2:], ["case", "library", "parameters", "iters", "cpu_s", "per_iter_ms", "ratio",
                                        "wall_ratio", "max_abs_ll_diff", "load_start", "load_end"])
        if "kde" in cases:
            rows += kde_case(args.rounds)
            print_table(rows[-2:], ["case", "library", "fit_cpu_s", "score_cpu_s", "fit_ratio", "score_ratio",
                                    "bandwidth", "max_abs_ll_diff", "load_start", "load_end"])
        if "nsf" in cases:
            for d in args.nsf_data.split(","):
                rows += nsf_case(d, args.rounds)
                print_table(rows[-3:], ["case", "library", "parameters", "gflop_step", "step_ms", "cpu_step_ms",
                                        "ratio", "wall_ratio", "flop_ratio", "load_start", "load_end"])
    write_results("matched", rows, "python -m bench.speed.matched " + " ".join(argv if argv is not None else sys.argv[1:]),
                  key=("case", "library"))


if __name__ == "__main__":
    main()
