"""The 2-D toy data sets of FFJORD (Grathwohl et al. 2019, ``toy_data.py``), generated from a seed.

Same maths and scale as FFJORD's toy_data.py (the DATA.md entropies hold for these), with the
randomness taken from a seeded numpy Generator; sample counts are exact for any n.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .dataset import Dataset
from .spec import DataSpec

TOY_DEFAULT_N = 10_000


def _toy_moons(n: int, rng: np.random.Generator) -> np.ndarray:
    from sklearn.datasets import make_moons
    x = make_moons(n_samples=n, noise=0.1, random_state=_sk_seed(rng))[0]
    return x * 2 + np.array([-1.0, -0.2])


def _toy_circles(n: int, rng: np.random.Generator) -> np.ndarray:
    from sklearn.datasets import make_circles
    return make_circles(n_samples=n, factor=0.5, noise=0.08, random_state=_sk_seed(rng))[0] * 3


def _toy_8gaussians(n: int, rng: np.random.Generator) -> np.ndarray:
    s = 1.0 / np.sqrt(2)
    centers = 4.0 * np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)])
    x = rng.standard_normal((n, 2)) * 0.5 + centers[rng.integers(0, 8, n)]
    return x / 1.414


def _toy_checkerboard(n: int, rng: np.random.Generator) -> np.ndarray:
    x1 = rng.random(n) * 4 - 2
    x2 = rng.random(n) - rng.integers(0, 2, n) * 2 + np.floor(x1) % 2
    return np.stack([x1, x2], 1) * 2


def _toy_rings(n: int, rng: np.random.Generator) -> np.ndarray:
    counts = [n // 4] * 3 + [n - 3 * (n // 4)]  # radii 1, .75, .5, .25 (times 3)
    pts = []
    for radius, k in zip((1.0, 0.75, 0.5, 0.25), counts):
        t = np.linspace(0, 2 * np.pi, k, endpoint=False)
        pts.append(np.stack([np.cos(t), np.sin(t)], 1) * radius)
    x = np.concatenate(pts) * 3.0
    x = x[rng.permutation(n)]
    return x + rng.normal(scale=0.08, size=x.shape)


def _toy_2spirals(n: int, rng: np.random.Generator) -> np.ndarray:
    h = n // 2
    t = np.sqrt(rng.random((n - h, 1))) * 540 * (2 * np.pi) / 360
    d1x = -np.cos(t) * t + rng.random((n - h, 1)) * 0.5
    d1y = np.sin(t) * t + rng.random((n - h, 1)) * 0.5
    d1 = np.hstack([d1x, d1y])
    x = np.vstack([d1, -d1[:h]]) / 3
    x = x + rng.standard_normal(x.shape) * 0.1
    return x[rng.permutation(n)]  # FFJORD returns the two arms in order; any prefix should mix


def _toy_pinwheel(n: int, rng: np.random.Generator) -> np.ndarray:
    radial_std, tangential_std, num_arms, rate = 0.3, 0.1, 5, 0.25
    rads = np.linspace(0, 2 * np.pi, num_arms, endpoint=False)
    features = rng.standard_normal((n, 2)) * np.array([radial_std, tangential_std])
    features[:, 0] += 1.0
    labels = np.arange(n) * num_arms // n  # arms of (almost) equal size
    angles = rads[labels] + rate * np.exp(features[:, 0])
    rotations = np.stack([np.cos(angles), -np.sin(angles), np.sin(angles), np.cos(angles)])
    rotations = np.reshape(rotations.T, (-1, 2, 2))
    return 2 * rng.permutation(np.einsum("ti,tij->tj", features, rotations))


def _sk_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


TOYS: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "moons": _toy_moons, "circles": _toy_circles, "8gaussians": _toy_8gaussians,
    "checkerboard": _toy_checkerboard, "rings": _toy_rings, "2spirals": _toy_2spirals,
    "pinwheel": _toy_pinwheel,
}


def load_toy(name: str, seed: int, n: int | None) -> Dataset:
    """``n`` (default `TOY_DEFAULT_N`) points of the toy ``name`` (a key of `TOYS`), drawn from ``seed``."""
    n = TOY_DEFAULT_N if n is None else n
    x = TOYS[name](n, np.random.default_rng(seed))
    return Dataset(torch.as_tensor(x, dtype=torch.float32), None, DataSpec((2,)), name)
