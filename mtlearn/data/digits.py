"""Real handwritten digits, 8x8 pixels, shipped with the package (no download).

The 1,797 images are the test set of the UCI "Optical Recognition of Handwritten Digits"
data (optdigits, E. Alpaydin and C. Kaynak, 1998), as bundled with scikit-learn; see
``LICENSE-digits.txt`` beside this file. They are stored as ``uint8`` in ``digits.npz``
(about 45 kB): ``images`` of shape (1797, 8, 8) with values 0..16 (the number of lit pixels
in a 4x4 block of the original 32x32 bitmap) and ``labels`` of shape (1797,).
"""

from importlib import resources

import numpy as np

_FILE = "digits.npz"
_MAX_COUNT = 16  # each pixel counts the lit pixels of a 4x4 block


def digits(dtype=np.float32):
    """Load the 1,797 handwritten 8x8 digits.

    Parameters
    ----------
    dtype : floating-point dtype
        dtype of ``X``.

    Returns
    -------
    X : ndarray of shape (1797, 1, 8, 8), dtype `dtype`
        Images, scaled from 0..16 to [0, 1]; ink is bright.
    y : ndarray of shape (1797,), dtype int64
        The digit, 0..9; between 174 and 183 images per digit.

    Examples
    --------
    >>> X, y = digits()
    >>> X.shape, X.dtype, y.shape, y.dtype
    ((1797, 1, 8, 8), dtype('float32'), (1797,), dtype('int64'))
    """
    if np.dtype(dtype).kind != "f":
        raise ValueError(f"dtype must be a floating-point dtype, got {dtype!r}")
    with resources.files(__package__).joinpath(_FILE).open("rb") as f, np.load(f) as npz:
        images, labels = npz["images"], npz["labels"]
    X = images.astype(dtype) / np.asarray(_MAX_COUNT, dtype=dtype)
    return X[:, None, :, :], labels.astype(np.int64)
