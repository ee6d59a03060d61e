"""Autoregressive families (made, pixelcnn, transformer) and character-level text data.

The autoregressive property is checked by back-propagation (which inputs reach which output),
normalization by summing exp(log_prob) over every possible example, in float64.
"""
from __future__ import annotations

import itertools
import math
import os

import pytest
import torch

import genlab
from genlab.data import DataSpec, Kind, load_dataset
from genlab.data.text import (ENTRY_END, UNKNOWN, CharVocab, entry_split, fortune_files,
                              fortunes_splits, read_entries)
from genlab.metrics.text import bits_per_char, perplexity
from genlab.nn.masked import MADE as MaskedMLP
from genlab import make


def _model(family, spec, **config):
    return make(family, spec, seed=0, **config).double()


def _reached(out: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Boolean mask of the entries of ``z`` whose gradient of ``out.sum()`` is non-zero."""
    (g,) = torch.autograd.grad(out.sum(), z, retain_graph=True)
    return g[0] != 0


# --------------------------------------------------------------------------- autoregressive property

@pytest.mark.parametrize("kind", ["continuous", "discrete"])
def test_made_output_d_depends_exactly_on_the_entries_before_it_in_every_order(kind):
    spec = DataSpec((5,)) if kind == "continuous" else DataSpec((5,), Kind.DISCRETE, levels=4)
    model = _model("made", spec, hidden=16, depth=2, n_orders=4, components=2)
    z = torch.tensor([[0.3, 1.0, 2.0, 0.0, 3.0]], dtype=torch.float64, requires_grad=True)
    for k in range(4):
        order = model.net.orders[k].tolist()
        assert sorted(order) == list(range(5))
        params = model.conditionals(z, k)
        for t, d in enumerate(order):
            expected = torch.zeros(5, dtype=torch.bool)
            expected[order[:t]] = True
            assert torch.equal(_reached(params[:, d], z), expected), (k, d)


def test_made_one_hot_inputs_keep_the_property():
    net = MaskedMLP(4, (12, 12), in_per_dim=3, out_per_dim=3, n_masks=2, seed=1).double()
    x = torch.randn(1, 12, dtype=torch.float64, requires_grad=True)
    for k in range(2):
        order = net.orders[k].tolist()
        y = net(x, k)
        for t, d in enumerate(order):
            reached = _reached(y[:, d], x).view(4, 3).any(1)
            expected = torch.zeros(4, dtype=torch.bool)
            expected[order[:t]] = True
            assert torch.equal(reached, expected)


@pytest.mark.parametrize("output", ["softmax", "logistic_mixture"])
def test_pixelcnn_pixel_reads_exactly_the_earlier_pixels_and_channels(output):
    spec = DataSpec((3, 4, 4), Kind.DISCRETE, levels=4)
    model = _model("pixelcnn", spec, channels=8, n_layers=4, kernel=3, output=output, components=2)
    z0 = torch.randint(0, 4, (1, 3, 4, 4), generator=torch.Generator().manual_seed(0)).double()
    z = (2 * z0 / 3 - 1 if output == "logistic_mixture" else z0).requires_grad_(True)
    params = model.conditionals(z)
    for i, j, c in itertools.product(range(4), range(4), range(3)):
        expected = torch.zeros(3, 4, 4, dtype=torch.bool)
        expected.view(3, 16)[:, : 4 * i + j] = True  # every channel of the earlier pixels
        expected[:c, i, j] = True  # earlier channels of this pixel
        # equality: nothing later is read, and no earlier pixel is missed (no blind spot)
        assert torch.equal(_reached(params[:, c, i, j], z), expected), (i, j, c)


def test_transformer_logits_at_t_depend_only_on_tokens_before_t():
    spec = DataSpec((6,))
    model = _model("transformer", spec, d_model=16, n_layers=2, n_heads=2, components=2)
    z = torch.randn(1, 6, dtype=torch.float64, requires_grad=True)
    params = model.conditionals(z)
    for t in range(6):
        expected = torch.arange(6) < t
        assert torch.equal(_reached(params[:, t], z), expected), t
    # token ids: changing token s changes the logits at t exactly when s < t
    text = DataSpec((5,), Kind.TEXT, levels=7, vocab=UNKNOWN + "abcdef")
    tm = _model("transformer", text, d_model=16, n_layers=2, n_heads=2)
    ids = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]], dtype=torch.float64)
    base = tm.conditionals(ids)
    for s in range(5):
        other = ids.clone()
        other[0, s] = 6.0
        changed = (tm.conditionals(other) - base).abs().amax(-1)[0] > 1e-12
        assert torch.equal(changed, torch.arange(5) > s), s


# --------------------------------------------------------------------------- normalization

def _total(model, values, shape):
    xs = torch.tensor(list(itertools.product(values, repeat=math.prod(shape))), dtype=torch.float64)
    return torch.logsumexp(model.log_prob(xs.reshape(-1, *shape)), 0).exp().item()


def test_made_probabilities_sum_to_one_over_all_binary_vectors():
    model = _model("made", DataSpec((4,), Kind.BINARY), hidden=8, n_orders=3)
    assert _total(model, (0, 1), (4,)) == pytest.approx(1.0, abs=1e-12)


def test_transformer_probabilities_sum_to_one_over_all_sequences():
    spec = DataSpec((3,), Kind.TEXT, levels=3, vocab=UNKNOWN + "ab")
    model = _model("transformer", spec, d_model=8, n_layers=1, n_heads=2)
    assert _total(model, (0, 1, 2), (3,)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("output,levels,shape", [("softmax", 2, (1, 2, 2)), ("logistic_mixture", 3, (2, 1, 2))])
def test_pixelcnn_probabilities_sum_to_one_over_all_images(output, levels, shape):
    spec = DataSpec(shape, Kind.DISCRETE, levels=levels)
    model = _model("pixelcnn", spec, channels=4, n_layers=2, output=output, components=2)
    assert _total(model, range(levels), shape) == pytest.approx(1.0, abs=1e-10)
    x = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (5, *shape) and set(x.unique().tolist()) <= set(range(levels))


def test_made_ensemble_is_the_mean_probability_of_its_orders():
    model = _model("made", DataSpec((3,)), hidden=8, n_orders=3, components=2)
    x = torch.randn(5, 3, dtype=torch.float64)
    z, logdet = model.pre(x)
    per_order = torch.stack([model.log_prob_order(z, k) for k in range(3)]) + logdet
    torch.testing.assert_close(model.log_prob(x), per_order.exp().mean(0).log())


def test_pixelcnn_refuses_vectors_and_continuous_images_with_the_reason():
    with pytest.raises(genlab.NotSupported, match="images"):
        _model("pixelcnn", DataSpec((4,), Kind.DISCRETE, levels=3))
    with pytest.raises(genlab.NotSupported, match="continuous"):
        _model("pixelcnn", DataSpec((1, 4, 4)))


# --------------------------------------------------------------------------- text data

def _write_corpus(folder):
    folder.mkdir()
    (folder / "alpha").write_text("".join(f"Saying number {i}.\nSecond line {i * 7}.\n%\n" for i in range(60)))
    (folder / "alpha.dat").write_bytes(bytes(range(256)))
    os.symlink(folder / "alpha", folder / "alpha.u8")
    (folder / "copy").write_text((folder / "alpha").read_text())  # same file twice: read once
    (folder / "beta").write_text("Saying number 3.\nSecond line 21.\n%\nA new one, ünïcode.\n%\n%\n")
    return folder


def test_fortunes_reader_skips_index_files_links_and_duplicates(tmp_path):
    folder = _write_corpus(tmp_path / "fortunes")
    assert [os.path.basename(f) for f in fortune_files(str(folder))] == ["alpha", "beta"]
    entries = read_entries(str(folder))
    assert len(entries) == 61 and entries[-1] == "A new one, ünïcode.\n"
    assert all(e.strip() and "%" not in e for e in entries)


def test_fortunes_splits_are_disjoint_by_entry_and_deterministic(tmp_path):
    folder = str(_write_corpus(tmp_path / "fortunes"))
    a = fortunes_splits(8, val=0.25, test=0.25, folder=folder)
    b = fortunes_splits(8, val=0.25, test=0.25, folder=folder)
    parts = {k: set(t.split(ENTRY_END)) - {""} for k, t in a.texts.items()}
    assert all(parts.values())
    assert not (parts["train"] & parts["val"]) and not (parts["train"] & parts["test"])
    assert not (parts["val"] & parts["test"])
    assert set().union(*parts.values()) == set(read_entries(folder))
    for part in ("train", "val", "test"):
        assert torch.equal(getattr(a, part).x, getattr(b, part).x)
        x = getattr(a, part).x
        assert x.shape[1] == 8 and a.vocab.decode(x.flatten()) == a.texts[part][: x.numel()]
        assert all(entry_split(e, 0.25, 0.25) == part for e in parts[part])


def test_fortunes_missing_tells_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install fortunes fortunes-min"):
        fortune_files(str(tmp_path / "nowhere"))


@pytest.mark.skipif(not os.path.isdir("/usr/share/games/fortunes"), reason="apt-get install fortunes fortunes-min")
def test_installed_fortunes_corpus_loads_by_name():
    ds = load_dataset("fortunes", n=50)
    assert ds.spec.kind is Kind.TEXT and ds.x.shape == (50, 64) and ds.spec.levels == len(ds.spec.vocab)
    assert ds.spec.vocab[0] == UNKNOWN and list(ds.spec.vocab[1:]) == sorted(ds.spec.vocab[1:])


def test_text_round_trip_and_unknown_characters(tmp_path):
    vocab = CharVocab.from_text("Hello, wörld!\n")
    s = "Hello, wörld!\nHi?"
    assert vocab.decode(vocab.encode("wörld, Hello!")) == "wörld, Hello!"
    assert vocab.decode(vocab.encode(s)) == "Hello, wörld!\nH" + UNKNOWN + UNKNOWN
    path = tmp_path / "story.txt"
    path.write_text(s * 10, encoding="utf-8")
    ds = load_dataset(str(path))
    assert ds.spec.kind is Kind.TEXT and ds.x.shape == (2, 64)
    assert CharVocab(ds.spec.vocab).decode(ds.x[0]) == (s * 10)[:64]


def test_perplexity_and_bits_per_char():
    assert perplexity(math.log(27)) == pytest.approx(27)
    assert bits_per_char(math.log(2)) == pytest.approx(1.0)
    assert bits_per_char(2 * math.log(2), chars_per_token=4) == pytest.approx(0.5)


def test_transformer_continues_a_prompt(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_text("abcabcabc" * 40)
    ds = load_dataset(str(path))
    model = make("transformer", ds.spec, seed=0, d_model=16, n_layers=1, n_heads=2)
    texts = model.sample_text(3, "cab", generator=torch.Generator().manual_seed(0))
    assert len(texts) == 3 and all(len(t) == 64 and t.startswith("cab") for t in texts)
    assert set("".join(texts)) <= set(ds.spec.vocab)
    with pytest.raises(ValueError, match="prompt"):
        model.sample_text(1, "x" * 64)


def test_made_with_many_levels_uses_a_logistic_mixture_that_sums_to_one():
    """Above 64 levels `output=auto` swaps the softmax for a discretized logistic mixture (a
    softmax would need D x levels outputs); it is still a normalised distribution."""
    from genlab.data import DataSpec
    spec = DataSpec((2,), "discrete", levels=100)
    torch.manual_seed(0)
    model = genlab.make("made", spec, hidden=16, depth=1).double()
    assert model.output == "logistic_mixture"
    grid = torch.cartesian_prod(torch.arange(100.), torch.arange(100.)).double()
    model.setup(grid)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        total = model.log_prob(grid).exp().sum()
    assert abs(float(total) - 1) < 1e-6
    assert genlab.make("made", DataSpec((2,), "discrete", levels=17)).output == "softmax"
