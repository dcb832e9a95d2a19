"""``training.fit``: a thin layer over ``parallel.train`` (same steps, same losses), validation
per epoch, Stop, the optimizer forms, and ``nn.fit_tbptt``'s optimizer forms."""

import threading

import numpy as np
import pytest

from mtlearn import data, nn, parallel
from mtlearn.training import accuracy, fit


@pytest.fixture(scope="module")
def shapes64():
    """250 float64 shapes: 200 to train (not a multiple of the batch sizes used), 50 to
    validate."""
    X, y = data.shapes(250, seed=1, dtype=np.float64)
    return (X[:200], y[:200]), (X[200:], y[200:])


def cnn(seed=3):
    return nn.course_cnn(num_classes=4, seed=seed, dtype=np.float64)


@pytest.mark.slow
def test_cnn_learns_shapes():
    X, y = data.shapes(2000, seed=0)
    Xtr, ytr, Xva, yva = data.split(X, y, 0.2, seed=0)
    model = nn.course_cnn(num_classes=len(data.SHAPE_CLASSES), seed=0)
    result = fit(model, nn.SoftmaxCrossEntropy(), (Xtr, ytr), (Xva, yva), epochs=5,
                 batch_size=32, lr=0.05, momentum=0.9, seed=0)
    assert result.final_accuracy >= 0.97, result.val_accuracy
    assert result.losses[-1] < result.losses[0] / 4


@pytest.mark.slow
def test_cnn_learns_digits():
    X, y = data.digits()
    Xtr, ytr, Xva, yva = data.split(X, y, 0.2, seed=0)
    model = nn.course_cnn(image_size=8, channels=(16, 32), seed=0)
    result = fit(model, nn.SoftmaxCrossEntropy(), (Xtr, ytr), (Xva, yva), epochs=15,
                 batch_size=32, optimizer=nn.Adam(model.params, lr=3e-3), seed=0)
    assert result.final_accuracy >= 0.95, result.val_accuracy


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_fit_makes_the_steps_of_parallel_train_serial(shapes64, momentum):
    """Same settings, same losses and parameters, bit for bit: fit *is* the serial strategy
    (plain SGD by default, the last partial batch dropped), plus validation. (fit leaves
    BLAS threads alone unless told; the same BLAS thread count is part of "bit for bit".)"""
    train, val = shapes64
    a, b = cnn(), cnn()
    result = fit(a, nn.SoftmaxCrossEntropy(), train, val, epochs=2, batch_size=48, lr=0.05,
                 momentum=momentum, seed=5, blas_threads=1)
    opt = None if momentum == 0 else (lambda p: nn.SGD(p, lr=0.05, momentum=momentum))
    history = parallel.train(b, nn.SoftmaxCrossEntropy(), train, strategy="serial",
                             epochs=2, batch_size=48, lr=0.05, seed=5, optimizer=opt)
    assert len(result.losses) == 2 * (200 // 48) == history.steps      # 8 full batches
    assert result.losses == history.losses
    np.testing.assert_array_equal(a.params, b.params)
    assert result.history.config["strategy"] == "serial"
    assert result.history.config["optimizer"] == f"SGD(lr=0.05, momentum={momentum:g})"


def test_fit_validates_and_times_each_epoch(shapes64):
    train, val = shapes64
    model = cnn()
    steps = []
    result = fit(model, nn.SoftmaxCrossEntropy(), train, val, epochs=3, batch_size=50,
                 seed=5, on_step=lambda k, v: steps.append(k))
    assert steps == list(range(1, 13))
    assert len(result.val_accuracy) == len(result.epoch_times) == 3
    assert result.final_accuracy == accuracy(model, *val)      # after the last epoch
    assert all(0 <= a <= 1 for a in result.val_accuracy)
    assert all(t > 0 for t in result.epoch_times)
    assert sum(result.epoch_times) <= result.wall_time
    assert not result.cancelled
    without = fit(cnn(), nn.SoftmaxCrossEntropy(), train, epochs=1, batch_size=50, seed=5)
    assert without.val_accuracy == [] and without.final_accuracy is None
    assert len(without.epoch_times) == 1


def test_fit_is_deterministic_and_checks_its_arguments(shapes64):
    train, val = shapes64
    runs = []
    for _ in range(2):
        model = cnn()
        fit(model, nn.SoftmaxCrossEntropy(), train, epochs=1, batch_size=50, seed=5)
        runs.append(model.params.copy())
    np.testing.assert_array_equal(*runs)
    X, y = train
    loss = nn.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match="same length"):
        fit(model, loss, (X, y[:-1]))
    with pytest.raises(ValueError, match="epochs"):
        fit(model, loss, train, epochs=0)
    with pytest.raises(ValueError, match="lr"):
        fit(model, loss, train, lr=float("inf"))
    with pytest.raises(ValueError, match="momentum"):
        fit(model, loss, train, momentum=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        fit(model, loss, train, batch_size=201)
    with pytest.raises(ValueError, match="^val: X and y"):
        fit(model, loss, train, (val[0], val[1][:-1]))
    with pytest.raises(TypeError, match="^val"):
        fit(model, loss, train, val=val[0])
    with pytest.raises(ValueError, match="not both"):
        fit(model, loss, train, momentum=0.9, optimizer=lambda p: nn.SGD(p, lr=0.1))
    with pytest.raises(TypeError, match="optimizer"):
        fit(model, loss, train, optimizer="adam")


def test_fit_takes_an_optimizer_or_a_factory(shapes64):
    train, _ = shapes64
    a, b = cnn(), cnn()
    fit(a, nn.SoftmaxCrossEntropy(), train, epochs=1, batch_size=50,
        optimizer=nn.Adam(a.params, lr=1e-3))
    fit(b, nn.SoftmaxCrossEntropy(), train, epochs=1, batch_size=50,
        optimizer=lambda p: nn.Adam(p, lr=1e-3))
    np.testing.assert_array_equal(a.params, b.params)
    other = cnn()
    with pytest.raises(ValueError, match="not model.params"):
        fit(a, nn.SoftmaxCrossEntropy(), train, optimizer=nn.Adam(other.params, lr=1e-3))
    with pytest.raises(ValueError, match="factory"):
        fit(a, nn.SoftmaxCrossEntropy(), train, strategy="sync", threads=2,
            optimizer=nn.Adam(a.params, lr=1e-3))


def test_fit_on_two_threads_equals_serial(shapes64, no_thread_leak):
    train, val = shapes64
    a, b = cnn(), cnn()
    serial = fit(a, nn.SoftmaxCrossEntropy(), train, val, epochs=2, batch_size=50, seed=5)
    sync = fit(b, nn.SoftmaxCrossEntropy(), train, val, epochs=2, batch_size=50, seed=5,
               strategy="sync", threads=2)
    assert sync.history.strategy == "sync" and sync.history.threads == 2
    np.testing.assert_allclose(sync.losses, serial.losses, rtol=1e-10)
    np.testing.assert_allclose(b.params, a.params, rtol=1e-10, atol=1e-12)
    assert sync.val_accuracy == serial.val_accuracy


def test_cancel_stops_fit_and_returns_what_it_has(shapes64):
    train, val = shapes64
    cancel = threading.Event()

    def on_step(step, loss):
        if step == 5:
            cancel.set()

    result = fit(cnn(), nn.SoftmaxCrossEntropy(), train, val, epochs=3, batch_size=50,
                 on_step=on_step, cancel=cancel)
    assert result.cancelled and result.history.cancelled
    assert len(result.losses) == 5                      # stopped at the next step
    assert len(result.val_accuracy) == 1                # only epoch 1 (steps 1-4) ended


def test_fit_stops_at_the_first_non_finite_loss():
    """A linear regression at lr=1e200 overflows to an infinite loss within a few steps."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 3)), rng.standard_normal((64, 1))

    def model():
        return nn.Sequential(nn.Dense(3, 1), seed=0, dtype=np.float64)

    with pytest.raises(FloatingPointError, match="diverged"), np.errstate(all="ignore"):
        fit(model(), nn.MSELoss(), (X, y), epochs=5, batch_size=8, lr=1e200)
    with np.errstate(all="ignore"):
        result = fit(model(), nn.MSELoss(), (X, y), epochs=5, batch_size=8, lr=1e200,
                     check_finite=False)
    assert not np.isfinite(result.losses).all() and len(result.losses) == 40


def test_fit_tbptt_takes_an_optimizer_or_a_factory():
    ids = data.Vocabulary.from_text("0123456789+=\n").encode(data.generate_arithmetic(100))
    chunks = data.tbptt_batches(ids, 4, 8)
    a = nn.char_model(13, "gru", hidden_size=8, seed=2)
    b = nn.char_model(13, "gru", hidden_size=8, seed=2)
    la, _ = nn.fit_tbptt(a, chunks, nn.SGD(a.params, lr=0.05))
    lb, _ = nn.fit_tbptt(b, chunks, lambda p: nn.SGD(p, lr=0.05))
    assert la == lb
    np.testing.assert_array_equal(a.params, b.params)
    with pytest.raises(TypeError, match="optimizer"):
        nn.fit_tbptt(a, chunks, lambda p: None)
    with pytest.raises(TypeError, match="optimizer"):
        nn.fit_tbptt(a, chunks, nn.SGD)
