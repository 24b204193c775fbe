"""Texture sources for synthetic scenes: held-out photos and procedural dead-leaves images.

Why dead leaves: a handful of photos cannot teach a network to deblur scenes it has not seen
(trained on 4 photos, models memorised them and got worse with more steps). A dead-leaves image
(occluding shapes whose radii follow a power law, Matheron's model) has the scale-invariant
statistics of natural images, and Achddou, Gousseau and Ladjal ("Synthetic images as a regularity
prior for image restoration neural networks", 2021) train restoration networks to near natural-image
quality on such images alone. Every scene draws a new image, so the variety is unbounded.

Each shape is filled with one of: a flat colour with a gentle gradient, a procedural pattern
(sinusoidal stripes or a checker, random period and orientation), or a random crop of one of the
split's photos at a random scale with a random colour change. Train and test never share a photo:
:data:`PHOTOS` splits them, and the scene seeds of the two splits differ.
"""

from __future__ import annotations

import functools

import numpy as np
from skimage import data as skdata
from skimage.transform import resize

# Photos that load offline from scikit-image's own distribution, by split. Test photos are the
# held-out natural colour photos (backgrounds) plus grey textures that only test scenes use. ``cat``
# is the same picture as ``chelsea`` and the right stereo view is the left one shifted, so neither
# appears anywhere.
PHOTOS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "backgrounds": ("astronaut", "rocket", "immunohistochemistry", "hubble_deep_field"),
        "objects": ("retina", "brick", "grass", "camera", "coins", "clock", "page", "colorwheel"),
    },
    "test": {
        "backgrounds": ("chelsea", "stereo_motorcycle", "coffee"),
        "objects": ("gravel", "moon", "text", "cell"),
    },
}
TRAIN_PHOTOS = PHOTOS["train"]["backgrounds"] + PHOTOS["train"]["objects"]
TEST_PHOTOS = PHOTOS["test"]["backgrounds"] + PHOTOS["test"]["objects"]

DEAD_LEAVES_ALPHA = 3.0  # radius density ~ r^-alpha: 3 is scale invariant in 2-D (Lee, Mumford, Huang 2001)
FILLS = ("flat", "stripes", "checker", "photo")
FILL_WEIGHTS = (0.3, 0.15, 0.05, 0.5)


@functools.cache
def photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as float32 in [0, 1] (grey photos stay 2-D)."""
    image = getattr(skdata, name)()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    return image.astype(np.float32) / 255


@functools.lru_cache(maxsize=256)  # every (photo, power-of-two size) a scene asks for: about 75 MB
def photo_at(name: str, short_side: int) -> np.ndarray:
    """The photo resampled so its short side is ``short_side`` pixels, anti-aliased (no shimmer)."""
    image = photo(name)
    scale = short_side / min(image.shape[:2])
    shape = (round(image.shape[0] * scale), round(image.shape[1] * scale))
    return resize(image, shape, order=3, anti_aliasing=scale < 1, mode="reflect").clip(0, 1).astype(np.float32)


def as_rgb(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour photos as they are; grey ones between two random tints so they still give RGB texture."""
    if image.ndim == 3:
        return image
    dark, light = rng.uniform(0.0, 0.3, 3), rng.uniform(0.7, 1.0, 3)
    return (dark + image[..., None] * (light - dark)).astype(np.float32)


def _colour_change(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random colour change: channel permutation, a mixing matrix near identity, gain and offset."""
    image = image[..., rng.permutation(3)]
    mix = np.eye(3) + rng.normal(0, 0.15, (3, 3))
    mix /= mix.sum(axis=1, keepdims=True)
    gain, offset = rng.uniform(0.6, 1.2), rng.uniform(-0.15, 0.15, 3)
    return (image @ mix.T.astype(np.float32) * gain + offset).clip(0, 1).astype(np.float32)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """A grey level plus a moderate chroma: natural surfaces are rarely fully saturated."""
    return (rng.uniform(0.05, 0.95) + rng.uniform(0, 0.5) * (rng.uniform(0, 1, 3) - 0.5)).clip(0, 1).astype(np.float32)


def _fill(rng: np.random.Generator, kind: str, yy: np.ndarray, xx: np.ndarray, photos: tuple[str, ...],
          size: int) -> np.ndarray:
    """An (h, w, 3) patch to fill one shape's bounding box (pixel coordinates ``yy``, ``xx``) with."""
    h, w = yy.shape
    if kind == "photo":
        name = photos[rng.integers(len(photos))]
        # A few scales per power-of-two texture size, so the resampled photos stay cached.
        image = photo_at(name, int(2 ** round(np.log2(size)) * rng.choice([0.5, 1.0, 2.0])))
        pad = [(0, max(0, h - image.shape[0])), (0, max(0, w - image.shape[1]))] + [(0, 0)] * (image.ndim - 2)
        image = np.pad(image, pad, mode="reflect") if any(p[1] for p in pad) else image
        y0, x0 = rng.integers(0, image.shape[0] - h + 1), rng.integers(0, image.shape[1] - w + 1)
        patch = as_rgb(image[y0:y0 + h, x0:x0 + w], rng)
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        return _colour_change(patch, rng)
    a, b = _random_colour(rng), _random_colour(rng)
    theta = rng.uniform(0, np.pi)
    u = np.cos(theta) * xx + np.sin(theta) * yy
    if kind == "flat":  # a gentle gradient across the shape
        t = (u - u.min()) / max(float(np.ptp(u)), 1.0) * rng.uniform(0, 0.3)
    elif kind == "stripes":
        period = np.exp(rng.uniform(np.log(2.5), np.log(max(3.0, size / 4))))
        t = 0.5 + 0.5 * np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi))
    else:  # checker
        period = np.exp(rng.uniform(np.log(3), np.log(max(4.0, size / 4))))
        v = -np.sin(theta) * xx + np.cos(theta) * yy
        t = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    return (a + t[..., None] * (b - a)).astype(np.float32)


def dead_leaves(rng: np.random.Generator, height: int, width: int, photos: tuple[str, ...],
                r_min: float | None = None, r_max: float | None = None, max_shapes: int = 5000) -> np.ndarray:
    """A dead-leaves image (height, width, 3) in [0, 1]: shapes stacked front to back until covered.

    Radii follow ``r^-DEAD_LEAVES_ALPHA`` on [r_min, r_max]; shapes are discs, ellipses or
    rectangles with a one-pixel soft edge, composited front to back (each new shape only shows
    where the ones in front leave the image uncovered), which has the same law as painting back
    to front and stops as soon as the image is covered. ``r_min`` defaults to 1.5 px up to 192 px
    images and grows with the size beyond, so large images take as many shapes (and as long) as
    small ones; their finest detail then comes from the photo and pattern fills.
    """
    r_min = r_min or max(1.5, max(height, width) / 128)
    r_max = r_max or max(height, width) / 3
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
    colour = np.zeros((height, width, 3), np.float32)
    uncovered = np.ones((height, width), np.float32)
    a = 1 - DEAD_LEAVES_ALPHA  # inverse-CDF sampling of the power law
    for _ in range(max_shapes):
        r = (r_min ** a + rng.random() * (r_max ** a - r_min ** a)) ** (1 / a)
        cy, cx = rng.uniform(-r, height + r), rng.uniform(-r, width + r)
        kind_shape = rng.integers(3)
        aspect, angle = rng.uniform(0.4, 1.0), rng.uniform(0, np.pi)
        y0, y1 = max(0, int(cy - r) - 1), min(height, int(np.ceil(cy + r)) + 2)
        x0, x1 = max(0, int(cx - r) - 1), min(width, int(np.ceil(cx + r)) + 2)
        if y0 >= y1 or x0 >= x1:
            continue
        left = uncovered[y0:y1, x0:x1]
        if not left.any():
            continue
        dy, dx = grid_y[y0:y1, x0:x1] - cy, grid_x[y0:y1, x0:x1] - cx
        if kind_shape == 0:  # disc: signed distance to the edge, in pixels
            inside = r - np.hypot(dy, dx)
        else:
            cos, sin = np.cos(angle), np.sin(angle)
            u, v = cos * dx + sin * dy, (-sin * dx + cos * dy) / aspect
            inside = (r - np.hypot(u, v)) * aspect if kind_shape == 1 else \
                np.minimum(r - np.abs(u), (r - np.abs(v)) * aspect)
        alpha = np.clip(inside + 0.5, 0, 1) * left
        if not alpha.any():
            continue
        kind = FILLS[rng.choice(len(FILLS), p=FILL_WEIGHTS)] if photos else FILLS[rng.integers(3)]
        patch = _fill(rng, kind, dy, dx, photos, max(height, width))
        colour[y0:y1, x0:x1] += alpha[..., None] * patch
        uncovered[y0:y1, x0:x1] = left - alpha
        if uncovered.max() < 1e-3:
            break
    return (colour + uncovered[..., None] * _random_colour(rng)).clip(0, 1)
