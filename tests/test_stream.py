"""Streaming data (genlab.data.stream, genlab.data.sources): the same examples, spec, splits,
batches and trained weights as the in-memory path; exact mid-epoch resume; workers; reads only
what is asked."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import genlab
from genlab.data import load_dataset, split
from genlab.data.stream import Feed, StreamDataset, setup_sample
from genlab.train import TrainConfig, Trainer

PIL = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """60 8x8 grey PNGs in two classes; class b keeps some in a nested folder (ImageFolder style)."""
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i in range(60):
        d = root / ("a" if i < 30 else "b") / ("deep" if i >= 50 else "")
        d.mkdir(parents=True, exist_ok=True)
        PIL.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), mode="L").save(d / f"{i:03d}.png")
    return str(root)


def _fit(x, y=None, *, spec=None, out=None, resume=False, callbacks=None, **train):
    """Weights of a tiny flow trained 2 epochs (4 batches each) on x (a tensor needs ``spec``)."""
    model = genlab.make("realnvp", spec or x.spec, seed=0, n_layers=2, hidden=16, depth=1)
    cfg = TrainConfig(epochs=2, batch_size=16, progress=False, patience=None, threads=1, **train)
    Trainer(model, cfg, out=out, callbacks=callbacks).fit(x, y, resume=resume)
    return model.state_dict()


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_folder_stream_equals_memory(folder):
    mem, st = load_dataset(folder), load_dataset(folder + ":stream")
    assert isinstance(st, StreamDataset) and st.x is st and len(st) == len(mem) == 60
    assert st.spec == mem.spec and st.class_names == mem.class_names == ("a", "b")
    got = st.materialize()
    assert torch.equal(got.x, mem.x) and torch.equal(got.y, mem.y)
    assert mem.y[-1] == 1  # the nested images belong to their top-level class folder
    s_mem, s_st = split(mem, seed=3), split(st, seed=3)  # index-based, the same permutation
    for part in ("train", "val", "test"):
        assert torch.equal(getattr(s_st, part).materialize().x, getattr(s_mem, part).x)


def test_same_batches_and_weights_as_tensors(folder):
    mem, st = load_dataset(folder), load_dataset(folder + ":stream")
    order = torch.randperm(60, generator=torch.Generator().manual_seed(1))
    got = list(Feed(st, None, check=lambda t: t).batches(order, 1, 4, 16))
    want = list(Feed(mem.x, mem.y).batches(order, 1, 4, 16))
    assert [b for b, *_ in got] == [1, 2, 3]
    for (_, xa, ya), (_, xb, yb) in zip(got, want):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    _same(_fit(st), _fit(mem.x, mem.y, spec=mem.spec))


def test_workers_give_the_same_weights(folder):
    st = load_dataset(folder + ":stream")
    _same(_fit(st, workers=2), _fit(st, workers=0))


def test_resume_mid_epoch_is_exact(folder, tmp_path):
    st = load_dataset(folder + ":stream")
    whole = _fit(st)

    class Stop(Exception):
        pass

    def stop(trainer, record):
        if record["step"] == 6:  # 4 batches an epoch: the middle of the second epoch
            raise Stop

    with pytest.raises(Stop):
        _fit(st, out=tmp_path / "run", callbacks=[stop], checkpoint_every=1)
    _same(_fit(load_dataset(folder + ":stream"), out=tmp_path / "run", resume=True, checkpoint_every=1), whole)


def test_reads_only_what_is_asked(folder):
    st = load_dataset(folder + ":stream")
    decoded = []
    read = st.source.read
    st.source.read = lambda rows: (decoded.extend(rows.tolist()), read(rows))[1]
    order = torch.randperm(60, generator=torch.Generator().manual_seed(0))
    batches = Feed(st, None).batches(order, 0, 4, 16)
    next(batches), next(batches)
    assert decoded == st.rows[order[:32].numpy()].tolist() and st.reads == 32
    decoded.clear()
    x, y = setup_sample(st, seed=0, limit=10)  # above the limit: a seeded sample, in file order
    assert len(decoded) == len(x) == 10 and decoded == sorted(decoded)


def test_npy_stream(tmp_path):
    a = np.random.default_rng(0).integers(0, 7, (50, 3, 4)).astype(np.int16)
    np.save(tmp_path / "a.npy", a)
    mem, st = load_dataset(str(tmp_path / "a.npy")), load_dataset(str(tmp_path / "a.npy:stream"))
    assert st.spec == mem.spec and st.spec.levels == 7
    assert torch.equal(st.materialize().x, mem.x) and torch.equal(st.materialize(5).x, mem.x[:5])
    b = np.random.default_rng(1).normal(size=(40, 3)).astype(np.float32)
    np.save(tmp_path / "b.npy", b)
    st = load_dataset(str(tmp_path / "b.npy"), stream=True)
    assert torch.equal(st.materialize().x, torch.from_numpy(b)) and st.spec.kind.value == "continuous"
    b[[4, 9], 1] = np.nan
    np.save(tmp_path / "b.npy", b)
    with pytest.raises(ValueError) as e_mem:
        load_dataset(str(tmp_path / "b.npy"))
    with pytest.raises(ValueError) as e_st:
        load_dataset(str(tmp_path / "b.npy"), stream=True)
    assert str(e_st.value) == str(e_mem.value) and "row 4" in str(e_st.value)


def test_csv_stream(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("u,v,label\n" + "".join(f"{i / 3:.4f},{i % 5},{'cat' if i % 2 else 'dog'}\n"
                                         for i in range(30)) + "\n")
    mem, st = load_dataset(str(p)), load_dataset(str(p) + ":stream")
    assert st.spec == mem.spec and st.class_names == mem.class_names
    got = st.materialize()
    assert torch.equal(got.x, mem.x) and torch.equal(got.y, mem.y)
    for bad in ("u,v\n1,2\n\n3,4\n", "u,v\n1,x\n2,3\n", "u,v\n1,a\n2,b\n", "u,v\n1,2\n3\n", "u,label\n1,\n"):
        p.write_text(bad)
        with pytest.raises(ValueError) as e_mem:
            load_dataset(str(p))
        with pytest.raises(ValueError) as e_st:
            load_dataset(str(p) + ":stream")
        assert str(e_st.value) == str(e_mem.value)


def test_text_stream(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("the quick brown fox\r\njumps over the lazy dog, é and ü.\n" * 20, encoding="utf-8")
    mem, st = load_dataset(str(p)), load_dataset(str(p) + ":stream")
    assert st.spec == mem.spec and torch.equal(st.materialize().x, mem.x)


def test_mixed_sizes_need_a_resize(tmp_path):
    for i, size in enumerate([(8, 8), (8, 8), (10, 6)]):
        PIL.fromarray(np.full(size[::-1], 9 * i, dtype=np.uint8), mode="L").save(tmp_path / f"{i}.png")
    with pytest.raises(ValueError, match="differ in size.*resize=HxW"):
        load_dataset(str(tmp_path) + ":stream")
    st = load_dataset(str(tmp_path) + ":stream:resize=4x5")
    assert st.spec.event_shape == (1, 4, 5) and st.materialize().x.shape == (3, 1, 4, 5)
    with pytest.raises(ValueError, match="height x width"):
        load_dataset(str(tmp_path) + ":resize=4")


def test_whole_data_families_refuse_a_stream(folder):
    st = load_dataset(folder + ":stream")
    model = genlab.make("gaussian", st.spec, seed=0)
    with pytest.raises(ValueError, match="needs the data in memory"):
        Trainer(model, TrainConfig(epochs=1, progress=False)).fit(st)
    with pytest.raises(ValueError, match="workers"):
        TrainConfig(workers=-1)



def test_a_run_on_a_streamed_npy_trains_and_evaluates_from_the_cli(tmp_path, capsys):
    from genlab.cli import main
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32))
    run = tmp_path / "run"
    assert main(["train", "realnvp", "--data", f"{tmp_path / 'x.npy'}:stream", "--epochs", "1",
                 "--set", "n_layers=2", "--set", "hidden=8", "--out", str(run)]) == 0
    assert main(["eval", str(run), "--metrics", "nll"]) == 0
    import json
    ev = json.loads((run / "eval.json").read_text())
    assert ev["metrics"]["nll_nats"]["n"] == 30  # the test split, gathered from the stream
