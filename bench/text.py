"""Held-out bits per character on the fortunes corpus: the causal transformer against bzip2 and
lzma on the same held-out text.

    python -m bench.text [--minutes 10] [--seq-len 64]

Split: each fortune entry goes to train / val / test by a CRC-32 of its text (5% val, 5% test;
`genlab.data.text.fortunes_splits`). The compressors get the exact held-out text (UTF-8 bytes)
at their maximum settings (bz2 level 9; lzma preset 9 | PRESET_EXTREME); bits per character =
8 * compressed bytes / characters. The transformer scores the same text cut into chunks of
``seq_len`` characters, each chunk on its own (its first character has no context; the
remainder of the text after the last full chunk, under seq_len characters, is not scored).
"""
from __future__ import annotations

import argparse
import bz2
import lzma
import sys
import time

import torch

from genlab.data.text import fortunes_splits
from genlab.metrics import nll
from genlab.metrics.text import bits_per_char, perplexity
from genlab.registry import get_family
from genlab import make
from genlab.train import TrainConfig, Trainer

from .common import print_table, write_results

CONFIG = {"d_model": 96, "n_layers": 3, "n_heads": 4}  # small: the CPU budget allows few steps


def compressor_rows(text: str) -> list[dict]:
    data = text.encode("utf-8")
    rows = []
    for name, fn in (("bzip2 (bz2, level 9)", lambda b: bz2.compress(b, 9)),
                     ("lzma (preset 9 extreme)", lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME))):
        size = len(fn(data))
        rows.append({"model": name, "bits_per_char": 8 * size / len(text), "compressed_bytes": size,
                     "characters": len(text)})
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="training budget of the transformer")
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    s = fortunes_splits(args.seq_len)
    print(f"fortunes: vocabulary {len(s.vocab)}; characters train {len(s.texts['train'])}, "
          f"val {len(s.texts['val'])}, test {len(s.texts['test'])}; chunks {len(s.train)} / {len(s.val)} / "
          f"{len(s.test)} of {args.seq_len}", flush=True)
    rows = compressor_rows(s.texts["test"])
    for r in rows:
        print(f"{r['model']:28s} {r['bits_per_char']:.4f} bits/char", flush=True)

    model = make("transformer", s.train.spec, seed=args.seed, **CONFIG)
    # one pass over the training chunks at most, the cosine schedule decaying over that pass
    cfg = TrainConfig(seed=args.seed, device="cpu", progress=False, epochs=1,
                       lr=args.lr, lr_schedule="cosine", batch_size=args.batch_size, max_minutes=args.minutes).for_family(get_family("transformer"))
    t0 = time.perf_counter()
    tr = Trainer(model, cfg)
    tr.fit(s.train.x, None, s.val.x)
    seconds = time.perf_counter() - t0
    e = nll(model, s.test.x)
    per_char = e.value / args.seq_len
    b = bits_per_char(e.value / args.seq_len)
    rows.append({"model": "transformer", "bits_per_char": b,
                 "bits_per_char_se": bits_per_char(e.stderr / args.seq_len),
                 "perplexity": perplexity(per_char), "nll_nats_per_char": per_char,
                 "characters": int(s.test.x.numel()), "train_seconds": seconds, "steps": tr.step,
                 "stop_reason": tr.stop_reason, "config": CONFIG,
                 "parameters": sum(q.numel() for q in model.parameters())})
    print(f"transformer {b:.4f} bits/char, perplexity {perplexity(per_char):.3f}, {seconds:.0f}s, "
          f"{tr.step} steps", flush=True)
    g = torch.Generator().manual_seed(0)
    for prompt in ("A ", "The computer "):
        print(repr(model.sample_text(1, prompt, generator=g)[0]))
    print()
    print_table(rows, ["model", "bits_per_char", "bits_per_char_se", "perplexity", "characters", "train_seconds",
                      "steps", "stop_reason"])
    write_results("text", rows, "python -m bench.text " + " ".join(argv if argv is not None else sys.argv[1:]),
                  key=("model",))


if __name__ == "__main__":
    main()
