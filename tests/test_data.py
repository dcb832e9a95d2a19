"""Tests for mtlearn.data: generated shapes, shipped digits, splits and minibatches."""

import numpy as np
import pytest

from mtlearn import data
from mtlearn.data import SHAPE_CLASSES, batches, digits, num_batches, shapes, split

# --- shapes ---------------------------------------------------------------------------------


def test_shapes_shapes_dtypes_and_range():
    X, y = shapes(120, size=20)
    assert X.shape == (120, 1, 20, 20) and X.dtype == np.float32
    assert y.shape == (120,) and y.dtype == np.int64
    assert X.min() >= 0.0 and X.max() <= 1.0
    assert set(np.unique(y)) == set(range(len(SHAPE_CLASSES)))


def test_shapes_dtype_float64():
    X, _ = shapes(8, dtype=np.float64)
    assert X.dtype == np.float64


def test_shapes_same_seed_same_arrays_other_seed_different():
    X1, y1 = shapes(64, seed=3)
    X2, y2 = shapes(64, seed=3)
    X3, y3 = shapes(64, seed=4)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    assert not np.array_equal(y1, y3)


def test_shapes_accepts_a_generator_as_seed():
    X1, _ = shapes(16, seed=np.random.default_rng(7))
    X2, _ = shapes(16, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(X1, X2)


@pytest.mark.parametrize("n", [1, 7, 400, 1001])
def test_shapes_classes_are_balanced(n):
    _, y = shapes(n, size=12)
    counts = np.bincount(y, minlength=4)
    assert counts.sum() == n and counts.max() - counts.min() <= 1


def test_shapes_class_subset_indexes_classes():
    classes = ("cross", "circle")
    _, y = shapes(50, classes=classes)
    assert set(np.unique(y)) == {0, 1}
    # Labels are per position in `classes`: one class alone gives label 0 everywhere.
    X, y = shapes(10, classes=("triangle",), noise=0.0)
    assert (y == 0).all() and X.max() > 0.5


def test_shapes_without_noise_have_a_dark_background_and_a_bright_shape():
    X, _ = shapes(200, noise=0.0)
    flat = X.reshape(200, -1)
    assert (flat.max(axis=1) > 0.6).all()  # brightness is at least 0.7
    assert (np.median(flat, axis=1) == 0).all()  # most of each image is background
    # The whole shape fits inside the image: the border rows and columns stay dark.
    border = np.concatenate([X[:, 0, 0, :], X[:, 0, -1, :], X[:, 0, :, 0], X[:, 0, :, -1]], 1)
    assert border.max() == 0


def test_shapes_classes_differ_on_average():
    # Labels match pictures: a filled square has more ink than a ring of the same size.
    X, y = shapes(400, noise=0.0, seed=1)
    ink = X.reshape(400, -1).sum(axis=1)
    circle, square = SHAPE_CLASSES.index("circle"), SHAPE_CLASSES.index("square")
    assert ink[y == square].mean() > ink[y == circle].mean()


def test_shapes_smallest_size_works():
    X, y = shapes(20, size=8)
    assert X.shape == (20, 1, 8, 8) and np.isfinite(X).all()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n": 0}, "n"),
        ({"n": 2.5}, "n"),
        ({"size": 7}, "size"),
        ({"classes": ("circle", "hexagon")}, "classes"),
        ({"classes": ()}, "classes"),
        ({"classes": "circle"}, "classes"),
        ({"classes": ("circle", "circle")}, "classes"),
        ({"noise": -0.1}, "noise"),
        ({"noise": float("nan")}, "noise"),
        ({"dtype": np.int32}, "dtype"),
    ],
)
def test_shapes_bad_arguments_raise_value_error_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        shapes(**kwargs)


# --- digits ---------------------------------------------------------------------------------


def test_digits_shape_dtype_range_and_label_counts():
    X, y = digits()
    assert X.shape == (1797, 1, 8, 8) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    # scikit-learn's load_digits: the UCI optdigits test set.
    expected = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    np.testing.assert_array_equal(np.bincount(y), expected)


def test_digits_are_whole_counts_over_16():
    X, _ = digits(dtype=np.float64)
    np.testing.assert_array_equal(X * 16, np.round(X * 16))
    # Fingerprints taken from scikit-learn's load_digits(): total ink, the first image's top
    # row and the first ten labels.
    assert int(np.round(X.sum() * 16)) == 561718
    np.testing.assert_array_equal(X[0, 0, 0] * 16, [0, 0, 5, 13, 9, 1, 0, 0])
    np.testing.assert_array_equal(digits()[1][:10], np.arange(10))


def test_digits_returns_fresh_arrays():
    X1, y1 = digits()
    X1[...] = -1
    y1[...] = -1
    X2, y2 = digits()
    assert X2.min() == 0.0 and y2.min() == 0


def test_digits_bad_dtype():
    with pytest.raises(ValueError, match="^dtype "):
        digits(dtype=np.uint8)


# --- split ----------------------------------------------------------------------------------


def _rows(X):
    return {tuple(r) for r in X.reshape(len(X), -1)}


def test_split_sizes_no_overlap_and_covers_everything():
    X = np.arange(1000, dtype=np.float64).reshape(100, 10)
    y = np.arange(100) % 3
    Xt, yt, Xv, yv = split(X, y, 0.25, seed=0)
    assert len(Xt) == len(yt) == 75 and len(Xv) == len(yv) == 25
    ids_t, ids_v = Xt[:, 0] // 10, Xv[:, 0] // 10
    assert not set(ids_t) & set(ids_v)
    assert sorted(np.concatenate([ids_t, ids_v])) == list(range(100))
    # Labels travel with their samples.
    np.testing.assert_array_equal(yt, (ids_t % 3).astype(int))
    np.testing.assert_array_equal(yv, (ids_v % 3).astype(int))


def test_split_is_stratified():
    X, y = digits()
    _, yt, _, yv = split(X, y, 0.2, seed=0)
    assert len(yv) == round(0.2 * 1797)
    counts, counts_v = np.bincount(y), np.bincount(yv, minlength=10)
    # Each class gives 20 % of its samples, to within one.
    assert np.all(np.abs(counts_v - 0.2 * counts) < 1)
    np.testing.assert_array_equal(np.bincount(yt) + counts_v, counts)


def test_split_stratified_keeps_a_rare_class_in_both_sets():
    y = np.array([0] * 95 + [1] * 5)
    X = np.arange(100)
    for seed in range(10):
        _, yt, _, yv = split(X, y, 0.2, seed=seed)
        assert (yv == 1).sum() == 1 and (yt == 1).sum() == 4


def test_split_unstratified_sizes():
    X, y = shapes(50, size=8)
    Xt, yt, Xv, yv = split(X, y, 0.3, seed=1, stratify=False)
    assert len(Xt) == 35 and len(Xv) == 15
    assert Xt.shape[1:] == X.shape[1:]


def test_split_is_deterministic_per_seed():
    X, y = shapes(200, size=8)
    a = split(X, y, seed=5)
    b = split(X, y, seed=5)
    c = split(X, y, seed=6)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert _rows(a[2]) != _rows(c[2])


def test_split_bad_arguments():
    X, y = np.zeros((10, 2)), np.zeros(9)
    with pytest.raises(ValueError, match=r"X and y.*len\(X\)=10.*len\(y\)=9"):
        split(X, y)
    y = np.zeros(10)
    for frac in (0, 1, -0.5, 1.5):
        with pytest.raises(ValueError, match="^val_fraction "):
            split(X, y, frac)
    with pytest.raises(ValueError, match="val_fraction"):
        split(X, y, 0.01)  # no validation sample left


# --- batches --------------------------------------------------------------------------------


def test_batches_cover_every_sample_once_per_epoch():
    X = np.arange(103)[:, None] * np.ones((1, 3))
    y = np.arange(103)
    seen = []
    for xb, yb in batches(X, y, 10, seed=0):
        assert len(xb) == len(yb) <= 10
        np.testing.assert_array_equal(xb[:, 0], yb)  # rows and labels stay paired
        seen.extend(yb)
    assert sorted(seen) == list(range(103))
    assert seen != list(range(103))  # shuffled


def test_batches_sizes_and_drop_last():
    X, y = np.zeros((10, 2)), np.arange(10)
    assert [len(yb) for _, yb in batches(X, y, 4)] == [4, 4, 2]
    assert [len(yb) for _, yb in batches(X, y, 4, drop_last=True)] == [4, 4]
    assert [len(yb) for _, yb in batches(X, y, 5, drop_last=True)] == [5, 5]
    assert list(batches(X, y, 11, drop_last=True)) == []
    assert len(list(batches(X, y, 11))) == 1


def test_batches_without_shuffle_are_in_order_and_views():
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    out = list(batches(X, y, 3, shuffle=False))
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in out]), y)
    assert all(np.shares_memory(xb, X) for xb, _ in out)


def test_batches_seeding():
    X, y = np.zeros((50, 1)), np.arange(50)

    def order(seed):
        return np.concatenate([yb for _, yb in batches(X, y, 8, seed=seed)])

    np.testing.assert_array_equal(order(1), order(1))
    assert not np.array_equal(order(1), order(2))
    # A Generator gives a new order each epoch, reproducibly from its seed.
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    a1, a2 = order(rng_a), order(rng_a)
    assert not np.array_equal(a1, a2)
    np.testing.assert_array_equal(a1, order(rng_b))
    np.testing.assert_array_equal(a2, order(rng_b))


def test_batches_agree_with_num_batches():
    X, y = np.zeros((37, 1)), np.zeros(37)
    for bs in (1, 5, 36, 37, 38):
        for drop in (False, True):
            assert len(list(batches(X, y, bs, drop_last=drop))) == num_batches(37, bs, drop)


def test_num_batches():
    assert num_batches(10, 4) == 3
    assert num_batches(10, 4, drop_last=True) == 2
    assert num_batches(8, 4) == num_batches(8, 4, drop_last=True) == 2
    assert num_batches(0, 4) == 0


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError), (2.0, TypeError),
                                        ("8", TypeError), (None, TypeError), (True, TypeError)])
def test_batches_bad_batch_size_raises_at_call(bad, error):
    """Out of range: ValueError; not an int at all: TypeError (the one checker's rule)."""
    X, y = np.zeros((10, 1)), np.zeros(10)
    with pytest.raises(error, match="^batch_size "):
        batches(X, y, bad)  # no iteration needed: checked when called
    with pytest.raises(error, match="^batch_size "):
        num_batches(10, bad)


def test_batches_mismatched_lengths():
    with pytest.raises(ValueError, match=r"X and y.*len\(X\)=5.*len\(y\)=4"):
        batches(np.zeros((5, 2)), np.zeros(4), 2)


def test_num_batches_bad_n():
    with pytest.raises(ValueError, match="^n "):
        num_batches(-1, 4)


def test_package_exports():
    assert set(data.__all__) >= {"shapes", "SHAPE_CLASSES", "digits", "split", "batches",
                                 "num_batches", "Vocabulary", "adding_problem", "char_corpus",
                                 "sine_waves", "tbptt_batches", "unigram_loss"}
    assert all(hasattr(data, name) for name in data.__all__)
    assert SHAPE_CLASSES == ("circle", "square", "triangle", "cross")
