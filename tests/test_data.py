"""Behaviour of genlab.data: named data sets, user files, errors and splits."""
from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import DataSpec, Dataset, Kind, Splits, dataset_names, load_dataset, split
from genlab.data.bundled import FASHION_MNIST_DIR

TOYS = ["moons", "circles", "8gaussians", "checkerboard", "rings", "2spirals", "pinwheel"]
HAVE_FASHION = os.path.exists(os.path.join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz"))

# name -> (n to ask for, expected event shape, kind, levels, num_classes)
EXPECTED = {
    **{t: (1000, (2,), Kind.CONTINUOUS, None, None) for t in TOYS},
    "digits": (1000, (1, 8, 8), Kind.DISCRETE, 17, 10),
    "mnist5k": (1000, (1, 28, 28), Kind.DISCRETE, 256, 10),
    "fashion-mnist": (1000, (1, 28, 28), Kind.DISCRETE, 256, 10),
    "iris": (None, (4,), Kind.CONTINUOUS, None, 3),
    "wine": (None, (13,), Kind.CONTINUOUS, None, 3),
    "breast_cancer": (None, (30,), Kind.CONTINUOUS, None, 2),
    "asia": (None, (8,), Kind.CATEGORICAL, 2, None),
    # the vocabulary size depends on the installed corpus: checked to be the spec's own below
    "fortunes": (50, (64,), Kind.TEXT, "vocab", None),
}
HAVE_FORTUNES = os.path.isdir("/usr/share/games/fortunes")


# ----------------------------------------------------------------------------- named data sets

def test_names_are_sorted_and_covered():
    names = dataset_names()
    assert names == sorted(names)
    assert set(names) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_name_loads_with_its_spec(name):
    if name == "fashion-mnist" and not HAVE_FASHION:
        pytest.skip("apt-get install dataset-fashion-mnist to test fashion-mnist")
    if name == "fortunes" and not HAVE_FORTUNES:
        pytest.skip("apt-get install fortunes fortunes-min to test fortunes")
    n, shape, kind, levels, classes = EXPECTED[name]
    ds = load_dataset(name, n=n)
    if levels == "vocab":
        assert ds.spec.vocab is not None and len(ds.spec.vocab) == ds.spec.levels
        levels = ds.spec.levels
    assert isinstance(ds, Dataset) and ds.name == name
    assert ds.spec.event_shape == shape and ds.spec.kind is kind
    assert ds.spec.levels == levels and ds.spec.num_classes == classes
    assert ds.x.dtype == torch.float32 and ds.x.shape[1:] == shape
    assert torch.isfinite(ds.x).all()
    if n is not None:
        assert len(ds) == n
    if levels is not None:
        assert ds.x.min() >= 0 and ds.x.max() <= levels - 1
        assert torch.equal(ds.x, ds.x.round())
    if classes is None:
        assert ds.y is None
    else:
        assert ds.y.dtype == torch.int64 and ds.y.shape == (len(ds),)
        assert 0 <= ds.y.min() and ds.y.max() < classes


def test_full_sizes_and_feature_names():
    assert len(load_dataset("digits")) == 1797
    assert len(load_dataset("iris")) == 150
    assert load_dataset("iris").spec.feature_names[0] == "sepal length (cm)"
    mnist = load_dataset("mnist5k")
    assert len(mnist) == 5000 and mnist.x.max() == 255
    assert torch.equal(torch.bincount(mnist.y), torch.full((10,), 500))
    assert len(load_dataset("moons")) == 10_000  # toy default


def test_n_keeps_the_first_examples():
    full, head = load_dataset("digits"), load_dataset("digits", n=10)
    assert torch.equal(head.x, full.x[:10]) and torch.equal(head.y, full.y[:10])
    assert len(load_dataset("iris", n=10_000)) == 150  # at most n
    with pytest.raises(ValueError, match="positive integer"):
        load_dataset("iris", n=0)


def test_names_are_case_and_separator_insensitive():
    assert load_dataset("Breast-Cancer").name == "breast_cancer"


@pytest.mark.skipif(not HAVE_FASHION, reason="apt-get install dataset-fashion-mnist")
def test_fashion_mnist_full_and_by_path():
    ds = load_dataset("fashion-mnist")
    assert ds.x.shape == (70_000, 1, 28, 28)
    assert torch.equal(torch.bincount(ds.y), torch.full((10,), 7000))
    again = load_dataset(f"fashion-mnist:{FASHION_MNIST_DIR}", n=60_005)  # crosses into t10k
    assert torch.equal(again.x, ds.x[:60_005]) and torch.equal(again.y, ds.y[:60_005])


def test_fashion_mnist_env_var_and_missing_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_FASHION_MNIST", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        load_dataset(f"fashion-mnist:{tmp_path / 'nowhere'}")


def _write_idx(path, magic, array):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_parses_idx_and_rejects_a_bad_file(tmp_path):
    rng = np.random.default_rng(0)
    imgs = {p: rng.integers(0, 256, (k, 28, 28)) for p, k in (("train", 5), ("t10k", 3))}
    for part, im in imgs.items():
        _write_idx(tmp_path / f"{part}-images-idx3-ubyte.gz", 2051, im)
        _write_idx(tmp_path / f"{part}-labels-idx1-ubyte.gz", 2049, np.arange(len(im)))
    ds = load_dataset(f"fashion-mnist:{tmp_path}")
    assert ds.x.shape == (8, 1, 28, 28)
    assert torch.equal(ds.x[5:, 0], torch.as_tensor(imgs["t10k"], dtype=torch.float32))
    assert ds.y.tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", 2049, imgs["train"])  # wrong magic
    with pytest.raises(ValueError, match="magic number"):
        load_dataset(f"fashion-mnist:{tmp_path}")


# ----------------------------------------------------------------------------- 2-D toys

@pytest.mark.parametrize("name", TOYS)
def test_toys_are_deterministic_per_seed(name):
    a = load_dataset(name, seed=3, n=500)
    b = load_dataset(name, seed=3, n=500)
    c = load_dataset(name, seed=4, n=500)
    assert torch.equal(a.x, b.x)
    assert not torch.equal(a.x, c.x)
    assert len(load_dataset(name, n=333)) == 333  # exact count for any n


def test_toy_scales_match_ffjord():
    g = load_dataset("8gaussians", n=5000).x
    assert abs(g.norm(dim=1).mean().item() - 4 / 1.414) < 0.1
    cb = load_dataset("checkerboard", n=5000).x
    assert cb.abs().max() <= 4
    # the checkerboard occupies the squares where floor(x1/2) + floor(x2/2) is even
    assert ((torch.floor(cb[:, 0] / 2) + torch.floor(cb[:, 1] / 2)) % 2 == 0).all()
    moons = load_dataset("moons", n=5000).x
    assert moons[:, 0].min() < -2.5 and moons[:, 0].max() > 2.5  # make_moons * 2 - [1, 0.2]
    assert abs(load_dataset("circles", n=5000).x.norm(dim=1).mean().item() - 2.25) < 0.1  # radii 3, 1.5


# ----------------------------------------------------------------------------- user files

def test_npy_round_trip_and_spec_inference(tmp_path):
    cases = [
        (np.random.default_rng(0).normal(size=(20, 3)), (3,), Kind.CONTINUOUS, None),
        (np.arange(10.0), (1,), Kind.CONTINUOUS, None),
        (np.random.default_rng(0).integers(0, 2, (20, 5)), (5,), Kind.BINARY, 2),
        (np.random.default_rng(0).random((20, 5)) > 0.5, (5,), Kind.BINARY, 2),
        (np.arange(20 * 16, dtype=np.uint8).reshape(20, 4, 4) % 7, (1, 4, 4), Kind.DISCRETE, 7),
        (np.zeros((20, 5, 6, 3), np.uint8) + 200, (3, 5, 6), Kind.DISCRETE, 201),
        (np.zeros((20, 3, 5, 6), np.int64) + 9, (3, 5, 6), Kind.DISCRETE, 10),
        (np.arange(-10, 10).reshape(10, 2), (2,), Kind.CONTINUOUS, None),
    ]
    for i, (arr, shape, kind, levels) in enumerate(cases):
        path = str(tmp_path / f"a{i}.npy")
        np.save(path, arr)
        ds = load_dataset(path)
        assert (ds.spec.event_shape, ds.spec.kind, ds.spec.levels) == (shape, kind, levels), i
        assert ds.name == path and ds.y is None and ds.x.dtype == torch.float32
    # values and channels-last transpose
    assert torch.equal(load_dataset(str(tmp_path / "a0.npy")).x, torch.as_tensor(cases[0][0]).float())
    img = np.random.default_rng(1).integers(0, 256, (4, 5, 6, 3)).astype(np.uint8)
    np.save(tmp_path / "img.npy", img)
    assert torch.equal(load_dataset(str(tmp_path / "img.npy")).x,
                       torch.as_tensor(img.transpose(0, 3, 1, 2)).float())
    assert len(load_dataset(str(tmp_path / "a0.npy"), n=7)) == 7


def test_npz_round_trip(tmp_path):
    x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    y = np.arange(30) % 3
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    ds = load_dataset(str(tmp_path / "xy.npz"))
    assert torch.equal(ds.x, torch.as_tensor(x)) and ds.y.tolist() == y.tolist()
    assert ds.spec.num_classes == 3
    np.savez(tmp_path / "only.npz", x)  # the only array (arr_0), no labels
    ds = load_dataset(str(tmp_path / "only.npz"))
    assert torch.equal(ds.x, torch.as_tensor(x)) and ds.y is None
    np.savez(tmp_path / "keys.npz", a=x, b=x)
    with pytest.raises(ValueError, match="no array named 'x'"):
        load_dataset(str(tmp_path / "keys.npz"))


def test_csv_round_trip_with_header_and_labels(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("height,weight,label\n1.5,60,0\n1.7,70.5,1\n1.8,80,2\n1.6,65,1\n")
    ds = load_dataset(str(path))
    assert ds.spec.event_shape == (2,) and ds.spec.kind is Kind.CONTINUOUS
    assert ds.spec.feature_names == ("height", "weight")
    assert ds.y.tolist() == [0, 1, 2, 1] and ds.spec.num_classes == 3
    assert torch.allclose(ds.x[1], torch.tensor([1.7, 70.5]))


def test_csv_without_header_and_text_labels(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("1,2,3\n4,5,6\n")
    ds = load_dataset(str(path))
    assert ds.x.tolist() == [[1, 2, 3], [4, 5, 6]] and ds.y is None and ds.spec.feature_names is None
    path = tmp_path / "named.csv"
    path.write_text("a,b,class\n1,2,dog\n3,4,cat\n5,6,dog\n")
    assert load_dataset(str(path)).y.tolist() == [1, 0, 1]  # sorted class names
    path = tmp_path / "points.csv"
    path.write_text("x,y\n0.5,1.25\n-1,2.5\n")  # a real-valued y is a coordinate, not a label
    ds = load_dataset(str(path))
    assert ds.y is None and ds.spec.event_shape == (2,)


def _png_folder(root, sizes, mode="L", classes=None):
    rng = np.random.default_rng(0)
    arrays = []
    for i, (w, h) in enumerate(sizes):
        folder = root if classes is None else root / classes[i]
        folder.mkdir(parents=True, exist_ok=True)
        shape = (h, w) if mode == "L" else (h, w, 3)
        a = rng.integers(0, 256, shape).astype(np.uint8)
        Image.fromarray(a, mode).save(folder / f"im{i:02d}.png")
        arrays.append(a)
    return arrays


def test_png_folder_round_trip(tmp_path):
    arrays = _png_folder(tmp_path / "grey", [(6, 5)] * 3)
    ds = load_dataset(str(tmp_path / "grey"))
    assert ds.x.shape == (3, 1, 5, 6) and ds.y is None
    assert ds.spec.kind is Kind.DISCRETE and ds.spec.levels == 256
    assert torch.equal(ds.x[:, 0], torch.as_tensor(np.stack(arrays)).float())
    arrays = _png_folder(tmp_path / "rgb", [(4, 4)] * 4, "RGB", classes=["b", "a", "b", "a"])
    ds = load_dataset(str(tmp_path / "rgb"))
    assert ds.x.shape == (4, 3, 4, 4) and ds.spec.num_classes == 2
    assert ds.y.tolist() == [0, 0, 1, 1] and ds.class_names == ("a", "b")
    assert torch.equal(ds.x[0], torch.as_tensor(arrays[1].transpose(2, 0, 1)).float())


# ----------------------------------------------------------------------------- errors

def test_nan_is_rejected_with_count_and_row(tmp_path):
    x = np.ones((10, 3))
    x[4, 1] = np.nan
    x[7, 0] = np.inf
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(ValueError, match=r"1 NaN and 1 Inf .* first at row 4"):
        load_dataset(str(tmp_path / "nan.npy"))
    (tmp_path / "gap.csv").write_text("a,b\n1,2\n3,\n")
    with pytest.raises(ValueError, match="row 3, column 2 .'b'. is empty"):  # 1-based, header = row 1
        load_dataset(str(tmp_path / "gap.csv"))


def test_empty_csv_is_rejected(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_dataset(str(tmp_path / "empty.csv"))
    (tmp_path / "header.csv").write_text("a,b,c\n")
    with pytest.raises(ValueError, match="no data rows"):
        load_dataset(str(tmp_path / "header.csv"))


def test_non_numeric_column_is_named(tmp_path):
    (tmp_path / "bad.csv").write_text("age,city,income\n30,Paris,10\n40,Rome,20\n")
    with pytest.raises(ValueError, match=r"non-numeric column.*'city' \(e\.g\. 'Paris'\).*encode"):
        load_dataset(str(tmp_path / "bad.csv"))


def test_images_of_two_sizes_name_both_files(tmp_path):
    _png_folder(tmp_path, [(6, 5), (6, 5), (7, 5)])
    with pytest.raises(ValueError, match=r"im00\.png is 6x5 .*im02\.png is 7x5.*resize"):
        load_dataset(str(tmp_path))


def test_corrupt_png_is_named(tmp_path):
    _png_folder(tmp_path, [(6, 5)])
    (tmp_path / "zz.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ValueError, match=r"zz\.png: corrupt"):
        load_dataset(str(tmp_path))


def test_unknown_name_lists_known_names_and_paths():
    with pytest.raises(ValueError, match=r"unknown data set 'mnits'.*moons.*\.npy, \.npz or \.csv"):
        load_dataset("mnits")


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_dataset(str(tmp_path / "nope.npy"))


def test_bad_arrays(tmp_path):
    np.save(tmp_path / "scalar.npy", np.array(3.0))
    with pytest.raises(ValueError, match="0-d"):
        load_dataset(str(tmp_path / "scalar.npy"))
    np.save(tmp_path / "none.npy", np.zeros((0, 3)))
    with pytest.raises(ValueError, match="no examples"):
        load_dataset(str(tmp_path / "none.npy"))
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    with pytest.raises(ValueError, match="not numbers"):
        load_dataset(str(tmp_path / "text.npy"))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="object array"):
        load_dataset(str(tmp_path / "obj.npy"))
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="not a valid .npy"):
        load_dataset(str(tmp_path / "junk.npy"))
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ValueError, match="no PNG/JPEG"):
        load_dataset(str(tmp_path / "empty_dir"))


# ----------------------------------------------------------------------------- splits

def test_split_is_deterministic_disjoint_and_complete():
    ds = load_dataset("digits")
    s = split(ds, seed=1)
    assert isinstance(s, Splits)
    assert (len(s.train), len(s.val), len(s.test)) == (1437, 180, 180)
    again, other = split(ds, seed=1), split(ds, seed=2)
    assert torch.equal(s.train.x, again.train.x) and torch.equal(s.test.y, again.test.y)
    assert not torch.equal(s.test.x, other.test.x)
    # rows of digits are not unique, so check disjointness through an index column
    idx = Dataset(torch.arange(len(ds), dtype=torch.float32)[:, None], None, DataSpec((1,)), "i")
    parts = split(idx, seed=1)
    got = torch.cat([parts.train.x, parts.val.x, parts.test.x]).flatten().long()
    assert torch.equal(got.sort().values, torch.arange(len(ds)))
    assert s.train.spec == ds.spec and s.val.name == ds.name


def test_split_errors_on_empty_parts():
    ds = load_dataset("iris", n=4)
    with pytest.raises(ValueError, match="val.*would be empty"):
        split(ds, val=0.1, test=0.3)
    with pytest.raises(ValueError, match="nothing to train"):
        split(load_dataset("iris"), val=0.5, test=0.5)
    with pytest.raises(ValueError, match="fraction"):
        split(load_dataset("iris"), val=0.0)


def test_subset_keeps_spec():
    ds = load_dataset("iris")
    sub = ds.subset(torch.tensor([0, 50, 100]))
    assert sub.y.tolist() == [0, 1, 2] and sub.spec == ds.spec and len(sub) == 3


def test_corrupt_npz(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 broken zip")
    with pytest.raises(ValueError, match="not a valid .npz"):
        load_dataset(str(tmp_path / "junk.npz"))


# --------------------------------------------------------------------------- unpaired domains

def test_joined_domains_put_b_on_the_grid_of_a_and_label_the_domain():
    from genlab.data.domains import resize_domain
    ds = load_dataset("digits+mnist5k", n=20)
    assert len(ds) == 40 and ds.name == "digits+mnist5k" and ds.class_names == ("digits", "mnist5k")
    assert ds.spec == DataSpec((1, 8, 8), Kind.DISCRETE, levels=17, num_classes=2, domains=("digits", "mnist5k"))
    assert ds.y.tolist() == [0] * 20 + [1] * 20  # the label is the domain, not the digit
    torch.testing.assert_close(ds.x[:20], load_dataset("digits", n=20).x)
    mnist = load_dataset("mnist5k", n=20).x
    torch.testing.assert_close(ds.x[20:], resize_domain(mnist, 256, (1, 8, 8), 17))
    assert (ds.x == ds.x.round()).all() and ds.x.min() >= 0 and ds.x.max() <= 16
    assert "domains digits + mnist5k" in repr(ds)
    # the other way round, B is put on A's 28x28 grid and 256 levels
    back = load_dataset("mnist5k+digits", n=5)
    assert back.spec.event_shape == (1, 28, 28) and back.spec.levels == 256 and back.x.max() <= 255


def test_resize_domain_keeps_a_constant_image_and_averages_channels():
    from genlab.data.domains import resize_domain
    white = resize_domain(torch.full((2, 1, 28, 28), 255.0), 256, (1, 8, 8), 17)
    assert white.shape == (2, 1, 8, 8) and (white == 16).all()
    rgb = torch.stack([torch.zeros(4, 4), torch.full((4, 4), 2.0), torch.full((4, 4), 4.0)])[None]
    grey = resize_domain(rgb, 5, (1, 4, 4), 5)  # channel mean 2 of levels 0..4
    assert (grey == 2).all()


def test_domains_survive_splits_and_the_saved_spec():
    ds = load_dataset("digits+mnist5k", n=30)
    s = split(ds, seed=1)
    assert {int(v) for v in s.train.y} == {0, 1} and s.test.spec.domains == ("digits", "mnist5k")
    assert DataSpec.from_dict(ds.spec.to_dict()) == ds.spec
    assert "domains" not in load_dataset("digits", n=3).spec.to_dict()  # older readers never see it
    with pytest.raises(ValueError, match="one per label"):
        DataSpec((1, 8, 8), Kind.DISCRETE, levels=17, num_classes=3, domains=("a", "b"))


@pytest.mark.parametrize("name, match", [
    ("digits+moons", "moons holds vectors, not images"),
    ("digits+digits", "the same data set twice"),
    ("digits+", "empty name"),
    ("digits+nosuchset", "unknown data set 'nosuchset'"),
])
def test_bad_domain_joins_are_refused_with_the_reason(name, match):
    with pytest.raises(ValueError, match=match):
        load_dataset(name, n=5)


def test_a_path_with_a_plus_is_a_path(tmp_path):
    path = tmp_path / "a+b.npy"
    np.save(path, np.arange(6, dtype=np.int64).reshape(3, 2))
    assert load_dataset(str(path)).spec.event_shape == (2,)
