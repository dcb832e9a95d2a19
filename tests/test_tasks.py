"""mtlearn.tasks: the one registry of ready-made problems."""

import numpy as np
import pytest

from mtlearn import parallel, tasks


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_every_task_builds_trains_and_evaluates(name):
    t = tasks.get(name, n=128, seed=1)
    X, y = t.data
    Xv, yv = t.val
    assert len(X) + len(Xv) == (min(128, 1797) if name != "cnn-digits" else 128)
    assert X.dtype == np.float32 and Xv.shape[1:] == X.shape[1:]
    a, b = t.model(), t.model()
    np.testing.assert_array_equal(a.params, b.params)      # same seed, same model
    assert a.params is not b.params                         # but a fresh one each call
    h = parallel.train(a, t.loss, t.data, epochs=1, batch_size=16, lr=t.lr)
    assert np.isfinite(h.losses).all()
    loss, acc = t.evaluate(a)
    assert np.isfinite(loss)
    if t.num_classes is None:
        assert acc is None
    else:
        assert t.num_classes == int(max(y.max(), yv.max())) + 1   # from the labels
        assert 0.0 <= acc <= 1.0


def test_class_counts_come_from_the_data():
    assert tasks.get("cnn", n=64).num_classes == 4
    assert tasks.get("cnn-digits", n=400).num_classes == 10


def test_options_and_dtype():
    t = tasks.get("cnn", n=64, image_size=12, channels=(4, 6), dtype=np.float64)
    assert t.data[0].shape[1:] == (1, 12, 12) and t.model().params.dtype == np.float64
    assert tasks.get("lstm", n=64, seq_len=7).data[0].shape[1:] == (7, 2)


@pytest.mark.parametrize("kw, error, match", [
    (dict(name="resnet"), ValueError, "name must be one of"),
    (dict(name="cnn", n=2.5), TypeError, "n must be an int"),
    (dict(name="cnn", seed=-1), ValueError, "seed"),
    (dict(name="cnn", val_fraction=1.5), ValueError, "val_fraction"),
    (dict(name="lstm", image_size=12), TypeError, "no option"),
])
def test_bad_arguments_are_named(kw, error, match):
    with pytest.raises(error, match=match):
        tasks.get(**kw)


def test_regression_has_no_accuracy():
    t = tasks.get("lstm", n=64)
    with pytest.raises(ValueError, match="regression"):
        t.accuracy(t.model())


def test_recurrent_jobs_train_side_by_side_as_each_alone(no_thread_leak):
    jobs = tasks.recurrent_jobs(8, n=64, batch_size=16)
    assert [j["name"] for j in jobs] == ["rnn", "lstm", "gru"]
    assert len({id(j["model"]) for j in jobs}) == 3                  # a model each
    assert all(j["data"] is jobs[0]["data"] for j in jobs)           # one copy of the samples
    assert jobs[1]["model"].layers[0].hidden_size == 8
    side = parallel.train_many(jobs, threads=2)
    alone = parallel.train_many(tasks.recurrent_jobs(8, n=64, batch_size=16), threads=1)
    assert [h.losses for h in side] == [h.losses for h in alone]
    with pytest.raises(ValueError, match="hidden"):
        tasks.recurrent_jobs(0)
