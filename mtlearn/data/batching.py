"""Train/validation splits and minibatches, seeded so that every run sees the same data.

A generator returned by :func:`batches` is not safe to share between threads (two threads
calling ``next`` at once raise ``ValueError: generator already executing``): give each thread
its own, or let one thread feed the others through a ``queue.Queue``.
"""


import numpy as np

from ..runtime import checks


def _check_lengths(X, y):
    if len(X) != len(y):
        raise ValueError(
            f"X and y must have the same length (one label per sample), "
            f"got len(X)={len(X)} and len(y)={len(y)}"
        )


def _val_counts(counts, val_fraction):
    """How many samples of each class go to validation: ``val_fraction`` of each class,
    rounded so that the total is ``round(val_fraction * n)`` (largest remainders round up)."""
    quota = val_fraction * counts
    n_val = np.floor(quota).astype(np.int64)
    missing = int(round(val_fraction * counts.sum())) - int(n_val.sum())
    n_val[np.argsort(n_val - quota, kind="stable")[:missing]] += 1
    return n_val


def split(X, y, val_fraction=0.2, *, seed=0, stratify=True):
    """Split samples into a training and a validation set, at random but reproducibly.

    Parameters
    ----------
    X : ndarray of shape (N, ...)
        Samples, any dtype.
    y : ndarray of shape (N,)
        Labels.
    val_fraction : float, 0 < val_fraction < 1
        Share of the samples that go to validation: ``round(val_fraction * N)`` of them.
    seed : int or numpy.random.Generator
        Same seed, same split.
    stratify : bool
        If True, each class sends ``val_fraction`` of its samples (to within one) to
        validation, so both sets have the class mix of the whole; a plain random split can
        leave a rare class out of the validation set by chance.

    Returns
    -------
    X_train : ndarray of shape (N - N_val, ...), dtype of X
    y_train : ndarray of shape (N - N_val,), dtype of y
    X_val : ndarray of shape (N_val, ...), dtype of X
    y_val : ndarray of shape (N_val,), dtype of y
        Copies, each set in random order; every sample is in exactly one of the two sets.
    """
    X, y = np.asarray(X), np.asarray(y)
    _check_lengths(X, y)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction!r}")
    if stratify and y.ndim != 1:
        raise ValueError(f"stratify=True needs y of shape (N,) (class labels), got {y.shape}")
    n = len(y)
    n_val = int(round(val_fraction * n))
    if not 0 < n_val < n:
        raise ValueError(
            f"val_fraction={val_fraction} of {n} samples leaves an empty training or "
            f"validation set; need more samples or a different val_fraction"
        )

    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if stratify:
        # Walk the shuffled order class by class: the first n_val[c] samples of class c
        # (a random choice, thanks to the shuffle) go to validation.
        classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
        n_val_per_class = _val_counts(counts, val_fraction)
        is_val = np.zeros(n, dtype=bool)
        for c in range(len(classes)):
            is_val[order[inverse[order] == c][: n_val_per_class[c]]] = True
        val_idx, train_idx = order[is_val[order]], order[~is_val[order]]
    else:
        val_idx, train_idx = order[:n_val], order[n_val:]
    return X[train_idx], y[train_idx], X[val_idx], y[val_idx]


def num_batches(n, batch_size, drop_last=False):
    """Number of minibatches of ``batch_size`` in ``n`` samples.

    Parameters
    ----------
    n : int, >= 0
        Number of samples.
    batch_size : int, >= 1
        Samples per batch.
    drop_last : bool
        If True, a last, smaller batch is not counted.

    Returns
    -------
    int
        ``n // batch_size`` if `drop_last`, else ``ceil(n / batch_size)``.
    """
    batch_size = checks.integer("batch_size", batch_size, min=1)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0 (the number of samples), got {n!r}")
    return n // batch_size if drop_last else -(-n // batch_size)


def batches(X, y, batch_size, *, shuffle=True, seed=None, drop_last=False):
    """Iterate over one epoch of minibatches ``(xb, yb)``.

    Arguments are checked when ``batches`` is called, not when iteration starts, and the
    shuffled order is drawn then too. Call it once per epoch.

    Parameters
    ----------
    X : ndarray of shape (N, ...)
        Samples.
    y : ndarray of shape (N,)
        Labels (or targets of shape (N, ...)).
    batch_size : int, >= 1
        Samples per batch; the last batch is smaller when ``N % batch_size != 0``.
    shuffle : bool
        Visit the samples in a random order (else in order, 0..N-1).
    seed : None, int or numpy.random.Generator
        Seed for the order. Pass a Generator to get a new order each epoch from one stream
        (``rng = np.random.default_rng(0)``, then ``batches(..., seed=rng)`` every epoch);
        an int gives the same order every time; None, a fresh random one.
    drop_last : bool
        Skip the last batch if it is smaller than `batch_size`.

    Yields
    ------
    xb : ndarray of shape (B, ...), dtype of X
    yb : ndarray of shape (B,), dtype of y
        ``B == batch_size`` except perhaps for the last batch. With ``shuffle=True`` these are
        copies (fancy indexing); with ``shuffle=False``, views into X and y (slices): do not
        write into them.

    Examples
    --------
    >>> X, y = np.zeros((10, 3)), np.arange(10)
    >>> [len(yb) for _, yb in batches(X, y, 4)]
    [4, 4, 2]
    """
    batch_size = checks.integer("batch_size", batch_size, min=1)
    X, y = np.asarray(X), np.asarray(y)
    _check_lengths(X, y)
    n = len(X)
    order = np.random.default_rng(seed).permutation(n) if shuffle else None
    stop = num_batches(n, batch_size, drop_last) * batch_size
    return _iterate(X, y, batch_size, order, stop)


def _iterate(X, y, batch_size, order, stop):
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, len(X))
        if order is None:
            yield X[start:end], y[start:end]
        else:
            idx = order[start:end]
            yield X[idx], y[idx]
