"""Bad input gets a clear error (issue 18): CSV cells, image folders, arrays, config values,
compress input and damaged .glz files, and the Gaussian on more dimensions than examples.

Each test here failed on the code before the fix (the reason is in its docstring)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import fit_tiny
from genlab import io, make, settings
from genlab.data import load_dataset
from genlab.data.spec import DataSpec, Kind
from genlab.data.validate import check_input
from genlab.models.gaussian import fit_gaussian, ledoit_wolf
from genlab.tasks.compress import compress, decompress
from genlab.train import TrainConfig

MOONS = DataSpec((2,), Kind.CONTINUOUS)


# ----------------------------------------------------------------------------- CSV

@pytest.mark.parametrize("text, match", [
    ("1\n2\n\n3\n", r"row 3 is blank between data rows"),            # was: the row silently dropped
    (",2\n3,4\n", r"row 1, column 1 is empty"),                       # was: row 1 taken for a header
    ("1,x\n2,3\n", r"row 1, column 2 holds 'x', which is not a number"),  # was: taken for a header
    ("a,b\n1,2\n3,4e\n", r"row 3, column 2 \('b'\) holds '4e'"),
    ("a,b\n1,2\n3,1_000\n", r"row 3, column 2 \('b'\) holds '1_000'"),   # float() reads it as 1000
    ("a,b\n1,2\n3,1e39\n", r"column 2 \('b'\) holds '1e39' at row 3, beyond float32's range"),  # was: inf
    ("a,b\n1,2\n-inf,3\n", r"row 3, column 1 \('a'\) holds '-inf' \(not a finite number\)"),
    ("a,label\n1,0\n2,\n", r"row 3, column 2 \('label'\) is empty"),
])
def test_csv_cells_are_named_by_row_and_column(tmp_path, text, match):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(ValueError, match=match):
        load_dataset(str(tmp_path / "t.csv"))


def test_csv_trailing_blank_lines_and_header_detection_keep_every_row(tmp_path):
    (tmp_path / "t.csv").write_text("1\n2\n3\n\n\n")
    assert load_dataset(str(tmp_path / "t.csv")).x[:, 0].tolist() == [1, 2, 3]
    (tmp_path / "h.csv").write_text(",a,b\n0,1,2\n1,3,4\n")  # pandas' index column: an empty header cell
    ds = load_dataset(str(tmp_path / "h.csv"))
    assert ds.x.tolist() == [[0, 1, 2], [1, 3, 4]] and ds.spec.feature_names == ("", "a", "b")


# ----------------------------------------------------------------------------- image folders

def _save(folder, name, a, mode=None):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a, mode).save(folder / name)


def test_sixteen_bit_png_folder_is_refused_not_clipped(tmp_path):
    """Was: every pixel read as 255 without a word."""
    for i in range(2):
        _save(tmp_path, f"a{i}.png", (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000))
    with pytest.raises(ValueError, match=r"a0\.png is a 16-bit image.*Convert the folder to 8 bits"):
        load_dataset(str(tmp_path))


def test_grey_and_colour_images_are_not_mixed(tmp_path):
    """Was: the colour image silently converted to grey when a grey one came first."""
    _save(tmp_path, "a.png", np.zeros((3, 4), np.uint8))
    _save(tmp_path, "b.png", np.full((3, 4, 3), 200, np.uint8))
    with pytest.raises(ValueError, match=r"mixes grey and colour images \(.*a\.png is grey, .*b\.png is colour\)"):
        load_dataset(str(tmp_path))


# ----------------------------------------------------------------------------- arrays

def test_big_endian_arrays_are_read_like_native_ones():
    """Was: torch.from_numpy's 'byte order' ValueError."""
    x = np.arange(6, dtype=">f8").reshape(3, 2)
    assert torch.equal(check_input(x, MOONS), torch.arange(6.0).reshape(3, 2))
    model = make("gaussian", MOONS)
    assert torch.equal(model.log_prob(x), model.log_prob(x.astype("<f8")))


def test_complex_arrays_are_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match=r"complex numbers.*x\.real"):
        check_input(np.ones((3, 2), complex), MOONS)
    np.save(tmp_path / "c.npy", np.ones((3, 2), complex))
    with pytest.raises(ValueError, match=r"complex numbers.*x\.real"):
        load_dataset(str(tmp_path / "c.npy"))


def test_arrays_beyond_memory_are_refused_before_they_are_read(tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", np.ones((1000, 100), np.float32))
    monkeypatch.setenv("GENLAB_MAX_MODEL_BYTES", "100000")  # the memory limit, in bytes
    with pytest.raises(ValueError, match=r"shape \(1000, 100\) needs 0\.0 GiB of memory, more than"):
        load_dataset(str(tmp_path / "x.npy"))
    with pytest.raises(ValueError, match=r"shape \(1000, 100\) needs"):
        check_input(np.ones((1000, 100), np.uint8), DataSpec((100,), Kind.CONTINUOUS))


def test_npy_header_claiming_more_than_the_file_holds(tmp_path):
    """Was: numpy's own 'cannot reshape' (or an allocation of what the header claims)."""
    np.save(tmp_path / "x.npy", np.ones((100, 10)))
    raw = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "x.npy").write_bytes(raw[:400])
    with pytest.raises(ValueError, match=r"shape \(100, 10\) \(8,000 bytes\).*truncated"):
        load_dataset(str(tmp_path / "x.npy"))


# ----------------------------------------------------------------------------- config values

@pytest.mark.parametrize("values, match", [
    ({"hidden": True}, r"realnvp\.hidden must be an integer, got bool True"),
    ({"hidden": 8.0}, r"realnvp\.hidden must be an integer, got float 8\.0"),
    ({"scale_bound": math.nan}, r"realnvp\.scale_bound must be a finite number, got nan"),
    ({"scale_bound": math.inf}, r"realnvp\.scale_bound must be a finite number"),
    ({"n_layers": 1_000_000}, r"realnvp\.n_layers must be <= 1,000, got 1000000"),  # was: a hang
    ({"depth": 10**9}, r"realnvp\.depth must be <= 100"),
])
def test_config_values_are_checked_however_they_arrive(values, match):
    with pytest.raises(ValueError, match=match):
        make("realnvp", MOONS, **values)
    cls = type(make("realnvp", MOONS, n_layers=2, hidden=8).config)
    with pytest.raises(ValueError, match=match):  # a dataclass built in Python, given to the model
        type(make("realnvp", MOONS, n_layers=2, hidden=8))(MOONS, cls(**values))


def test_a_string_where_a_number_belongs_in_config_json_is_refused(tmp_path):
    """Was: "32" silently parsed; true taken for 1."""
    model = make("realnvp", MOONS, n_layers=2, hidden=8)
    cfg = {"format": io.FORMAT, "family": "realnvp", "spec": MOONS.to_dict(), "config": io.config_dict(model)}
    for key, bad, match in [("hidden", "8", r"holds the string '8' .* an integer belongs; write it without quotes"),
                            ("scale_bound", "nan", r"holds the string 'nan'"),
                            ("hidden", True, r"must be an integer, got bool"),
                            ("scale_bound", float("nan"), r"finite")]:
        edited = json.loads(json.dumps({**cfg, "config": {**cfg["config"], key: bad}}))
        with pytest.raises(ValueError, match=match):
            io.build(edited)
    assert isinstance(io.build(json.loads(json.dumps(cfg))), torch.nn.Module)


def test_settings_still_parse_command_line_strings_and_numpy_numbers():
    model = make("realnvp", MOONS, n_layers="2", hidden=np.int64(8), scale_bound=np.float32(2.0))
    assert model.config.hidden == 8 and type(model.config.hidden) is int and model.config.n_layers == 2
    json.dumps(io.config_dict(model))  # numpy numbers would not serialize


def test_model_too_large_for_memory_is_refused_before_its_weights_are_filled(monkeypatch):
    monkeypatch.setenv("GENLAB_MAX_MODEL_BYTES", str(50 * 2**20))
    with pytest.raises(ValueError, match=r"realnvp: these settings build a model whose parameters and buffers "
                                         r"take more than .* MiB.*choose smaller sizes"):
        make("realnvp", MOONS, hidden=20_000)  # 1.6 GB per hidden layer: stopped at the first one


@pytest.mark.parametrize("field, value, match", [
    ("grad_clip", -1.0, r"TrainConfig\.grad_clip must be >= 0, got -1\.0 \(0 or none: no clipping\)"),
    ("log_every", 0, r"TrainConfig\.log_every must be >= 1, got 0"),
    ("batch_size", 0, r"batch_size must be >= 1"),
    ("lr", 0.0, r"lr must be > 0"),
    ("lr", math.nan, r"lr must be a finite number"),
    ("ema", 1.5, r"ema must be >= 0 and <= 1"),
    ("epochs", "3", r"epochs must be an integer, got the string '3'"),
])
def test_train_config_ranges(field, value, match):
    """Was: grad_clip=-1 accepted (training reversed), log_every=0 a ZeroDivisionError later."""
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value})
    cfg = TrainConfig()
    with pytest.raises(ValueError, match=match):
        setattr(cfg, field, value)
    assert TrainConfig(grad_clip=0.0).grad_clip == 0.0 and TrainConfig(grad_clip=None).grad_clip is None


def test_train_config_strings_from_the_command_line_are_parsed():
    cfg = settings.build(TrainConfig, {"grad_clip": "none", "log_every": "5", "lr": "1e-2"})
    assert cfg.grad_clip is None and cfg.log_every == 5 and cfg.lr == 0.01
    with pytest.raises(ValueError, match="grad_clip must be >= 0"):
        settings.build(TrainConfig, {"grad_clip": "-1"})


# ----------------------------------------------------------------------------- compress

@pytest.fixture(scope="module")
def coded(digits):
    model = fit_tiny("made", digits, epochs=1)[0]
    return model, digits.x[:4].reshape(4, -1).numpy().astype(np.float64), compress(model, digits.x[:4])


def test_compress_refuses_floats_that_would_not_come_back(coded):
    """Was: 3.0000001 coded as 3, -0.0 as 0, silently."""
    model, x, _ = coded
    near = x.copy()
    near[1, 5] += 1e-7
    with pytest.raises(ValueError, match=r"not a whole number at index \(1, 5\).*Round the data first"):
        compress(model, near)
    neg = x.copy()
    neg[0, 0] = -0.0
    with pytest.raises(ValueError, match=r"negative zero \(-0\.0\) at index \(0, 0\)"):
        compress(model, neg)
    with pytest.raises(ValueError, match="negative zero"):
        compress(model, torch.from_numpy(neg))
    assert torch.equal(decompress(model, compress(model, x)).reshape(4, -1), torch.from_numpy(x).float())


def test_every_flipped_or_cut_header_byte_is_a_damaged_file(coded):
    """Was: 25 positions of the header region gave tracebacks (KeyError, TypeError, ...)."""
    model, _, data = coded
    head_end = 9 + int.from_bytes(data[5:9], "little") + 16
    for i in range(head_end + 8):
        for flip in (0x01, 0x80):
            bad = bytearray(data)
            bad[i] ^= flip
            with pytest.raises(ValueError, match="damaged|corrupted|not a genlab|version|truncated"):
                decompress(model, bytes(bad))
        with pytest.raises(ValueError, match="damaged|corrupted|not a genlab|truncated"):
            decompress(model, data[:i])


# ----------------------------------------------------------------------------- gaussian, n <= D

def test_gaussian_shrinks_like_scikit_learns_ledoit_wolf():
    sk = pytest.importorskip("sklearn.covariance")
    z = torch.randn(20, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * torch.linspace(
        0.5, 2, 50, dtype=torch.float64)
    d = z - z.mean(0)
    ours = ledoit_wolf(d.T @ d / len(z), d.square().sum(1).square().sum(), len(z))
    want, _ = sk.ledoit_wolf(z.numpy())
    np.testing.assert_allclose(ours.numpy(), want, rtol=1e-10, atol=1e-12)
    _, tril = fit_gaussian(z, 0.0, "auto")  # n <= D: auto shrinks (no reg needed for a Cholesky)
    np.testing.assert_allclose((tril @ tril.T).numpy(), want, rtol=1e-8, atol=1e-10)


def test_gaussian_with_more_dimensions_than_examples_scores_new_data_sensibly():
    """Was: the singular sample covariance + 1e-6 I gave held-out log-likelihoods near -1e6 per
    example (reported as a hang of fit on 60 x 5,000)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 200, generator=g)
    spec = DataSpec((200,), Kind.CONTINUOUS)
    scores = {}
    for shrinkage in ("off", "auto"):
        model = make("gaussian", spec, shrinkage=shrinkage)
        model.setup(x[:30])
        model.objectives()[0].loss(type("B", (), {"x": x[:30], "generator": None, "y": None})())
        scores[shrinkage] = model.log_prob(x[30:]).mean().item()
    assert scores["off"] < -1e4 < -300 < scores["auto"]
