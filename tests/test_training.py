"""End-to-end: the CNN learns the built-in datasets, and the command line works."""

import subprocess
import sys

import numpy as np
import pytest

from mtlearn import data, nn
from mtlearn.__main__ import main
from mtlearn.training import accuracy, fit


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


def test_fit_is_deterministic_and_validates():
    X, y = data.shapes(200, seed=1)
    runs = []
    for _ in range(2):
        model = nn.course_cnn(num_classes=4, seed=3)
        fit(model, nn.SoftmaxCrossEntropy(), (X, y), epochs=1, batch_size=50, seed=5)
        runs.append(model.params.copy())
    np.testing.assert_array_equal(*runs)
    assert 0 <= accuracy(model, X, y) <= 1
    with pytest.raises(ValueError, match="same length"):
        fit(model, nn.SoftmaxCrossEntropy(), (X, y[:-1]))
    with pytest.raises(ValueError, match="epochs"):
        fit(model, nn.SoftmaxCrossEntropy(), (X, y), epochs=0)


def test_cli_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("cores", "python", "numpy", "threads"):
        assert word in out


def test_cli_train_cnn_runs_with_progress_bar():
    proc = subprocess.run([sys.executable, "-m", "mtlearn", "train", "cnn", "--n", "300",
                           "--epochs", "1"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "final validation accuracy" in proc.stdout
    assert "steps/s" in proc.stderr and "[" in proc.stderr


def test_cli_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["train", "cnn", "--epochs", "0"])
    assert "positive integer" in capsys.readouterr().err


def test_cli_train_lstm_on_chars_samples_text():
    proc = subprocess.run([sys.executable, "-m", "mtlearn", "train", "lstm", "--epochs", "1",
                           "--hidden", "32", "--batch-size", "64"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "unigram" in proc.stdout and "final loss" in proc.stdout
    assert "sample at temperature 0.8" in proc.stdout and "=" in proc.stdout.split("correct")[-1]
    assert "steps/s" in proc.stderr and "[" in proc.stderr


@pytest.mark.parametrize("model", ["rnn", "gru"])
def test_cli_train_recurrent_on_the_adding_problem(model, capsys):
    assert main(["train", model, "--dataset", "adding", "--n", "256", "--epochs", "1",
                 "--seq-len", "10", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "to beat (always answering 1.0)" in out and "test mean squared error" in out


def test_cli_train_rejects_a_dataset_the_model_cannot_learn(capsys):
    assert main(["train", "cnn", "--dataset", "chars"]) == 2
    assert "shapes or digits" in capsys.readouterr().err
    assert main(["train", "lstm", "--dataset", "digits"]) == 2
    assert "chars or adding" in capsys.readouterr().err
