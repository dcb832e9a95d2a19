"""Generated images of simple shapes: a small, offline image-classification task.

Every shape is drawn from a *signed distance* on a grid of pixel coordinates (negative inside
the shape, zero on its edge): a filled shape lights the pixels where it is negative, an outline
those within half a stroke of zero. All images of one class are drawn at once with array
operations (no Python loop over images), so 2,000 images take a few tens of milliseconds.

Each image has its own position, size, stroke thickness, brightness and a slight rotation,
plus noise, so no single template fits a class. Measured on 2,000 images (1,600 to train,
seeds 0 to 3): softmax regression on the raw pixels reaches about 82 % validation accuracy;
the course CNN (conv-relu-pool twice, then dense; batch 32) 97 to 99 % within 5 to 8 epochs
of Adam (lr 3e-3) or 3 to 5 of SGD with momentum (lr 0.05, momentum 0.9). Filled or outline
is fixed per class:

========  ==========================================================
circle    a ring (outline)
square    a filled square
triangle  the outline of an equilateral triangle, apex up
cross     two filled bars crossing at right angles, a "+" sign
========  ==========================================================
"""

import numpy as np

SHAPE_CLASSES = ("circle", "square", "triangle", "cross")

_MAX_TILT = np.deg2rad(20.0)  # slight rotation only: a square must not turn into a diamond


# Each pixel's intensity in [0, 1] from its signed distance, anti-aliased over one pixel.
def _fill(distance):
    return np.clip(0.5 - distance, 0.0, 1.0)


def _stroke(distance, thickness):
    return np.clip(0.5 + thickness / 2 - np.abs(distance), 0.0, 1.0)


# (u, v): pixel coordinates in the shape's own frame, centred and rotated, shape (m, H, W);
# r: size, t: stroke thickness, in pixels, shape (m, 1, 1).
def _circle(u, v, r, t):
    return _stroke(np.hypot(u, v) - r, t)


def _square(u, v, r, t):
    # max(|u|, |v|) <= r is a square of half-side r (the Chebyshev "disc" of radius r).
    return _fill(np.maximum(np.abs(u), np.abs(v)) - r)


def _triangle(u, v, r, t):
    # An equilateral triangle is where three half-planes overlap; the largest of the three
    # plane distances is zero on its outline. Edge normals point down (the base), up-left and
    # up-right (v grows downwards, as rows do). Inradius 0.6 r puts the vertices 1.2 r out.
    angles = np.deg2rad([90.0, 210.0, 330.0])
    planes = [np.cos(a) * u + np.sin(a) * v for a in angles]
    return _stroke(np.maximum.reduce(planes) - 0.6 * r, t)


def _cross(u, v, r, t):
    # Two bars 1.5 strokes wide and 2 r long: inside a bar when close to one axis and not
    # past the arm's end.
    near_axis = np.minimum(np.abs(u), np.abs(v)) - 0.75 * t
    past_end = np.maximum(np.abs(u), np.abs(v)) - r
    return _fill(np.maximum(near_axis, past_end))


def _col(a):
    """(n,) -> (n, 1, 1), to broadcast one number per image against (n, size, size) grids."""
    return a[:, None, None]


_DRAW = {"circle": _circle, "square": _square, "triangle": _triangle, "cross": _cross}


def _check_args(n, size, classes, noise, dtype):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1 (the number of images), got {n!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size must be an integer >= 8 (pixels per side), got {size!r}")
    if isinstance(classes, str):
        raise ValueError(f"classes must be a sequence of class names, not the string {classes!r}")
    classes = tuple(classes)
    unknown = [c for c in classes if c not in SHAPE_CLASSES]
    if not classes or unknown:
        raise ValueError(
            f"classes must be a non-empty selection of {SHAPE_CLASSES}, got {classes!r}"
        )
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must not repeat a name, got {classes!r}")
    if not isinstance(noise, (int, float, np.number)) or not 0 <= noise < np.inf:
        raise ValueError(f"noise must be a finite number >= 0 (a std. deviation), got {noise!r}")
    if np.dtype(dtype).kind != "f":
        raise ValueError(f"dtype must be a floating-point dtype, got {dtype!r}")
    return classes


def shapes(n=2000, *, size=28, classes=SHAPE_CLASSES, noise=0.1, seed=0, dtype=np.float32):
    """Draw `n` grayscale images of shapes, with balanced classes.

    Parameters
    ----------
    n : int, >= 1
        Number of images.
    size : int, >= 8
        Height and width of each image, in pixels.
    classes : sequence of str
        Which shapes to draw, a selection from ``SHAPE_CLASSES``; label ``k`` means
        ``classes[k]``.
    noise : float, >= 0
        Standard deviation of the Gaussian noise added to every pixel.
    seed : int or numpy.random.Generator
        Same seed, same images (bit for bit).
    dtype : floating-point dtype
        dtype of ``X``.

    Returns
    -------
    X : ndarray of shape (n, 1, size, size), dtype `dtype`
        Images, bright shapes on a dark background, clipped to [0, 1].
    y : ndarray of shape (n,), dtype int64
        Labels in ``range(len(classes))``. Every class has ``n // len(classes)`` or one more
        images, in random order.

    Examples
    --------
    >>> X, y = shapes(100, size=16)
    >>> X.shape, X.dtype, y.shape, y.dtype
    ((100, 1, 16, 16), dtype('float32'), (100,), dtype('int64'))
    """
    classes = _check_args(n, size, classes, noise, dtype)
    rng = np.random.default_rng(seed)

    # Balanced labels: 0, 1, ..., k-1, 0, 1, ... shuffled.
    y = rng.permutation(np.arange(n) % len(classes)).astype(np.int64)

    # Each draw is made for all n images at once, in a fixed order that does not depend on
    # the classes: the same seed gives image i the same size, place and noise in any selection.
    r = size * rng.uniform(0.15, 0.26, n)  # radius / half-side / arm length, pixels
    t = np.maximum(1.25, r * rng.uniform(0.18, 0.32, n))  # stroke thickness, pixels
    tilt = rng.uniform(-_MAX_TILT, _MAX_TILT, n)
    brightness = rng.uniform(0.7, 1.0, n)
    # Keep the whole shape inside the image: 1.3 r covers a tilted square's corner (at most
    # r * (cos 20 + sin 20) = 1.28 r from the centre along an axis) and the triangle's vertices
    # (1.2 r, plus up to t for the mitred tip of a thick stroke). Capped at the image's centre,
    # where on the smallest images a big shape may touch the border.
    margin = np.minimum(1.3 * r + t + 1.0, size / 2)  # + 1: the anti-aliased edge
    cx = rng.uniform(margin, size - margin)
    cy = rng.uniform(margin, size - margin)

    # Pixel centres, then each image's coordinates rotated into its shape's frame (u, v).
    # Arrays of shape (n, size, size) via broadcasting: (n, 1, 1) against (size,) grids.
    grid = np.arange(size) + 0.5
    dx = grid[None, None, :] - _col(cx)
    dy = grid[None, :, None] - _col(cy)
    cos, sin = _col(np.cos(tilt)), _col(np.sin(tilt))
    u = cos * dx + sin * dy
    v = -sin * dx + cos * dy

    ink = np.empty((n, size, size))
    for label, name in enumerate(classes):
        m = y == label
        ink[m] = _DRAW[name](u[m], v[m], _col(r[m]), _col(t[m]))

    X = _col(brightness) * ink + noise * rng.standard_normal((n, size, size))
    X = np.clip(X, 0.0, 1.0).astype(dtype)
    return X[:, None, :, :], y
