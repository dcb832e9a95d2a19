"""Tests for the sequence data: sine waves, the adding problem, the arithmetic corpus."""

import numpy as np
import pytest

from mtlearn import data

# --- sine waves -----------------------------------------------------------------------------


def test_sine_waves_shapes_and_next_value():
    X, y = data.sine_waves(50, 20, seed=1)
    assert X.shape == (50, 20, 1) and y.shape == (50, 1) and X.dtype == np.float32
    assert np.abs(X).max() <= 1 and np.abs(y).max() <= 1
    # a sinusoid obeys s[t+1] + s[t-1] = 2 cos(w) s[t]: fit 2 cos(w) on the input, check y
    X64, y64 = data.sine_waves(50, 20, seed=1, dtype=np.float64)
    s = X64[:, :, 0]
    k = ((s[:, 2:] + s[:, :-2]) * s[:, 1:-1]).sum(1) / (s[:, 1:-1] ** 2).sum(1)
    np.testing.assert_allclose(y64[:, 0], k * s[:, -1] - s[:, -2], atol=1e-9)


def test_sine_waves_seeded_and_noisy():
    a, ya = data.sine_waves(8, 10, seed=3)
    b, yb = data.sine_waves(8, 10, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    noisy, yn = data.sine_waves(8, 10, seed=3, noise=0.1)
    np.testing.assert_array_equal(yn, ya)            # noise on the inputs only
    assert 0 < np.abs(noisy - a).mean() < 0.2


# --- adding problem -------------------------------------------------------------------------


def test_adding_problem_markers_and_targets():
    X, y = data.adding_problem(500, 30, seed=0)
    assert X.shape == (500, 30, 2) and y.shape == (500, 1) and X.dtype == np.float32
    values, markers = X[..., 0], X[..., 1]
    assert set(np.unique(markers)) == {0, 1}
    np.testing.assert_array_equal(markers.sum(1), 2)
    np.testing.assert_array_equal(markers[:, :15].sum(1), 1)     # one in each half
    assert values.min() >= 0 and values.max() < 1
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(1), rtol=1e-6)


def test_adding_problem_constant_answer_scores_about_a_sixth():
    _, y = data.adding_problem(20_000, 50, seed=0, dtype=np.float64)
    assert np.mean((y - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.01)


@pytest.mark.parametrize("make, message", [
    (lambda: data.adding_problem(10, 1), "seq_len"),
    (lambda: data.adding_problem(0, 10), "n must"),
    (lambda: data.sine_waves(10, 0), "seq_len"),
    (lambda: data.sine_waves(10, 5, dtype=np.int32), "dtype"),
])
def test_sequence_argument_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --- text -----------------------------------------------------------------------------------


def test_generate_arithmetic_is_correct_and_seeded():
    text = data.generate_arithmetic(100, seed=4)
    assert text == data.generate_arithmetic(100, seed=4) != data.generate_arithmetic(100, seed=5)
    assert text.endswith("\n") and text.count("\n") == 100
    assert data.score_arithmetic(text) == {"lines": 100, "well_formed": 1.0, "correct": 1.0}
    small = data.generate_arithmetic(50, max_operand=3)
    assert max(int(v) for line in small.split() for v in line.split("=")[0].split("+")) <= 3
    with pytest.raises(ValueError, match="n_lines"):
        data.generate_arithmetic(0)


def test_shipped_corpus_is_the_generated_one():
    text = data.char_corpus()
    assert text == data.generate_arithmetic(6000, seed=0)
    assert data.Vocabulary.from_text(text).chars == "\n+0123456789="


def test_vocabulary_round_trip_and_errors():
    vocab = data.Vocabulary.from_text("12+34=46\n")
    assert len(vocab) == 8 and repr(vocab) == "Vocabulary('\\n+12346=')"
    ids = vocab.encode("61+2=")
    assert ids.dtype == np.int64 and vocab.decode(ids) == "61+2="
    assert vocab.decode(ids.reshape(1, -1)) == "61+2="
    with pytest.raises(ValueError, match="'9' is not in the vocabulary"):
        vocab.encode("19")
    with pytest.raises(ValueError, match="distinct"):
        data.Vocabulary("aa")


def test_tbptt_batches_continue_row_by_row():
    ids = np.arange(103)
    chunks = data.tbptt_batches(ids, 4, 7)
    assert len(chunks) == 4 and [x.shape for x, _ in chunks] == [(4, 7)] * 3 + [(4, 4)]
    x = np.concatenate([c[0] for c in chunks], axis=1)
    y = np.concatenate([c[1] for c in chunks], axis=1)
    np.testing.assert_array_equal(x.ravel(), ids[:100])          # rows are contiguous streams
    np.testing.assert_array_equal(y, x + 1)                      # targets: the next token
    np.testing.assert_array_equal(chunks[1][0][:, 0], chunks[0][1][:, -1])
    with pytest.raises(ValueError):
        chunks[0][0][0, 0] = 5                                   # read-only views
    with pytest.raises(ValueError, match="too few"):
        data.tbptt_batches(np.arange(4), 4, 2)
    with pytest.raises(ValueError, match="seq_len"):
        data.tbptt_batches(ids, 4, 0)
    with pytest.raises(ValueError, match="1-D integer"):
        data.tbptt_batches(ids.astype(float), 4, 2)


def test_unigram_loss_and_score():
    assert data.unigram_loss(np.arange(8)) == pytest.approx(np.log(8))
    assert data.unigram_loss(np.zeros(5, int)) == 0
    score = data.score_arithmetic("1+2=3\n4+4=9\n7+=\n12+3")       # last line incomplete
    assert score == {"lines": 3, "well_formed": 2 / 3, "correct": 1 / 3}
    assert data.score_arithmetic("no newline") == {"lines": 0, "well_formed": 0.0,
                                                   "correct": 0.0}
