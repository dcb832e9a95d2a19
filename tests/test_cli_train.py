"""``python -m mtlearn train`` (and ``info``): every run through ``parallel.train``, argparse's
messages for bad arguments, progress that suits where stderr goes, divergence stops."""

import io
import subprocess
import sys
import time

import pytest

from mtlearn import parallel
from mtlearn.__main__ import main
from mtlearn.cli import train as cli_train
from mtlearn.cli.common import ProgressBar

SMALL = ["--n", "300", "--epochs", "1"]


def run_cli(*args, timeout=120):
    """The command in a fresh interpreter, stdout and stderr captured (so not a terminal)."""
    return subprocess.run([sys.executable, "-m", "mtlearn", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_cli_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("cores", "python", "numpy", "threads"):
        assert word in out


@pytest.mark.parametrize("args, says", [
    (["--lr", "0"], "argument --lr: must be a finite number > 0, got 0.0"),
    (["--lr", "-1"], "argument --lr: must be a finite number > 0, got -1.0"),
    (["--lr", "nan"], "argument --lr: must be a finite number > 0, got nan"),
    (["--lr", "inf"], "argument --lr: must be a finite number > 0, got inf"),
    (["--lr", "fast"], "argument --lr: expected a number, got 'fast'"),
    (["--n", "1"], "argument --n: must be an int from 10 to 1000000, got 1"),
    (["--epochs", "abc"], "argument --epochs: expected an int, got 'abc'"),
    (["--epochs", "0"], "argument --epochs: must be an int >= 1, got 0"),
    (["--epochs", "2.5"], "argument --epochs: expected an int, got '2.5'"),
    (["--seed", "-1"], "argument --seed: must be an int >= 0, got -1"),
    (["--threads", "0"], "argument --threads: must be an int >= 1, got 0"),
    (["--threads", "100000"], "argument --threads: must be an int from 1 to 1024"),
    (["--strategy", "magic"], "argument --strategy: invalid choice: 'magic'"),
    (["--temperature", "1"], "argument --temperature: not used by --dataset shapes"),
    (["--batch-size", "100000"], "argument --batch-size: must be at most the number of "
                                 "training samples (1600), got 100000"),
    (["--threads", "2"], "argument --threads: strategy serial runs on one thread"),
    (["--strategy", "sync", "--threads", "64"], "argument --threads: strategy sync splits "
                                                "each batch across its threads"),
    (["--dataset", "chars"], "argument --dataset: cnn trains on shapes or digits, not 'chars'"),
])
def test_cli_train_rejects_bad_arguments_like_argparse(args, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "cnn", *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "python -m mtlearn train: error: " + says in err, err
    assert "invalid positive_int" not in err and "Traceback" not in err
    assert "--lr" not in args or "0.05" not in err          # never silently the default


def test_cli_train_rejects_options_of_other_datasets(capsys):
    with pytest.raises(SystemExit):
        main(["train", "lstm", "--dataset", "digits"])
    assert "chars or adding" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "lstm", "--n", "500"])
    assert "argument --n: not used by --dataset chars" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "gru", "--dataset", "adding", "--seq-len", "1"])
    assert "argument --seq-len: the adding problem needs at least 2" in capsys.readouterr().err


def test_strategy_choices_are_parallel_strategies():
    """Written out so that building the parser imports no numpy; they must not drift."""
    assert cli_train.STRATEGIES == tuple(parallel.STRATEGIES)
    code = ("import sys; from mtlearn.__main__ import build_parser; build_parser(); "
            "print(any(m.startswith('numpy') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_cli_train_cnn_with_two_threads_sync(capsys, no_thread_leak):
    assert main(["train", "cnn", *SMALL, "--strategy", "sync", "--threads", "2",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "strategy sync on 2 threads" in out
    assert "sync on 2 threads: 7 steps in" in out and "ms/step" in out   # 240 // 32 = 7
    assert "final validation accuracy" in out


def test_cli_train_progress_is_one_line_per_epoch_when_stderr_is_not_a_terminal():
    proc = run_cli("train", "cnn", "--n", "300", "--epochs", "3", "--batch-size", "16")
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "step 45/45" in lines[-1] and "steps/s" in lines[-1]      # 240 // 16 = 15 a epoch
    assert "serial on 1 thread: 45 steps in" in proc.stdout
    assert "final validation accuracy" in proc.stdout


def test_progress_bar_redraws_in_a_terminal_a_few_times_a_second():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    bar = ProgressBar(2000, 1000, stream=stream, interval=0.1)
    start = time.perf_counter()
    for step in range(1, 2001):
        bar(step, 0.5)
    elapsed = time.perf_counter() - start
    text = stream.getvalue()
    assert text.endswith("2000/2000 steps  loss 0.5000  " + text.split("loss 0.5000  ")[-1])
    assert text.endswith("\n") and text.count("\n") == 1
    # the first call, one per elapsed interval, and the last
    assert text.count("\r") <= 2 + elapsed / 0.1, (text.count("\r"), elapsed)

    quiet = io.StringIO()                   # not a terminal: one line per epoch, no \r
    bar = ProgressBar(2000, 1000, stream=quiet)
    for step in range(1, 2001):
        bar(step, 0.5)
    assert "\r" not in quiet.getvalue() and quiet.getvalue().count("\n") == 2


def test_progress_bar_close_ends_an_open_line():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    bar = ProgressBar(100, stream=stream)
    bar(1, 1.0)
    bar.close()
    bar.close()
    assert stream.getvalue().endswith("\n") and stream.getvalue().count("\n") == 1


def test_cli_train_stops_a_run_that_diverges(capsys):
    assert main(["train", "cnn", *SMALL, "--lr", "1000", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "mtlearn train: training diverged: the loss rose from" in captured.err
    assert "try a smaller --lr (this run: 1000)" in captured.err
    assert "accuracy" not in captured.out


def test_cli_train_cnn_on_digits(capsys):
    assert main(["train", "cnn", "--dataset", "digits", "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "digits: 1438 train / 359 validation images (1, 8, 8), 10 classes" in out


def test_cli_train_lstm_on_chars_samples_text():
    proc = run_cli("train", "lstm", "--epochs", "1", "--hidden", "32", "--batch-size", "64",
                   "--strategy", "sync", "--threads", "2")
    assert proc.returncode == 0, proc.stderr
    assert "unigram" in proc.stdout and "final loss" in proc.stdout
    assert "sync on 2 threads: 27 steps" in proc.stdout               # 1741 windows // 64
    assert "sample at temperature 0.8" in proc.stdout and "=" in proc.stdout.split("correct")[-1]
    assert "epoch 1/1" in proc.stderr and "\r" not in proc.stderr


@pytest.mark.parametrize("model", ["rnn", "gru"])
def test_cli_train_recurrent_on_the_adding_problem(model, capsys):
    assert main(["train", model, "--dataset", "adding", "--n", "256", "--epochs", "1",
                 "--seq-len", "10", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "to beat (always answering 1.0)" in out and "validation mean squared error" in out
    assert "serial on 1 thread: 6 steps" in out                       # 205 // 32


def test_ctrl_c_ends_the_command_with_130_and_no_traceback(monkeypatch, capsys):
    import mtlearn.cli.info

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(mtlearn.cli.info, "run", interrupted)   # read when the parser is built
    assert main(["info"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"
