"""One procedural high-frame-rate scene: a textured background seen by a moving camera, plus objects.

The camera follows a smooth random path (sub-pixel translation, small roll and zoom, hand-shake
jitter) over a background texture larger than the view; 0-4 independently moving, mutually
occluding foreground objects (soft-edged shapes) pass in front. Everything is a closed-form function
of the high-rate time ``t``, so any frame renders on its own and only the frames a blurry frame
needs are rendered.

Motion rule: the camera's RMS speed, in pixels per high-rate frame, is drawn log-uniformly from
``SynthConfig.speed`` for every scene, train and test alike, whatever its content: a camera does
not know what it films. (The first version calibrated each scene's speed to its photo's power
spectrum, which tied blur to content: the busy test photo moved 2.5x faster than the smooth one.)
The range itself was chosen by measurement so that the held-out test scenes' blurry inputs span
about 24-30 dB from tau = 7 to tau = 15, as GoPro-style sets do; see docs/synthetic-data.md.
Objects draw their own speed from the same range.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.transform import resize

from bench_deblur.synth.textures import PHOTOS, as_rgb, dead_leaves, photo_at


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


class _Wave:
    """A bounded smooth random signal: a sum of sinusoids with closed-form value at any time."""

    def __init__(self, rng: np.random.Generator, amplitude: float, rms_speed: float,
                 periods: tuple[float, float] | None = None, n: int = 3):
        """``amplitude`` bounds |value|; ``rms_speed`` is the RMS of its time derivative.

        Without ``periods`` the frequencies follow from amplitude and speed (a slow sweep);
        with them (hand shake) the amplitudes follow from the periods instead.
        """
        self.phase = rng.uniform(0, 2 * np.pi, n)
        if periods is None:
            self.amp = amplitude * rng.dirichlet(np.full(n, 2.0))
            rel = rng.uniform(0.5, 1.5, n)
            norm = np.sqrt(np.sum((self.amp * rel) ** 2) / 2)
            self.freq = rel * (rms_speed / norm if norm > 0 else 0.0)
        else:
            self.freq = 2 * np.pi / rng.uniform(*periods, n)
            self.amp = rms_speed * np.sqrt(2 / n) / self.freq

    @property
    def bound(self) -> float:
        return float(np.sum(self.amp))

    def __call__(self, t: float) -> float:
        return float(np.sum(self.amp * np.sin(self.freq * t + self.phase)))


class _Orbit:
    """A bounded 2-D path at nearly constant speed: a tilted ellipse traversed uniformly plus a wobble.

    Why not independent sinusoids per axis: their speed passes through zero, so the mean speed
    of a short sequence varied several-fold between seeds and its blurry PSNR by over 10 dB.
    """

    def __init__(self, rng: np.random.Generator, radius: float, speed: float,
                 aspect: tuple[float, float], size: tuple[float, float]):
        self.wobble = [_Wave(rng, 0.15 * radius, 0.2 * speed) for _ in range(2)]
        major = max(0.0, radius - max(w.bound for w in self.wobble)) * rng.uniform(*size)
        self.axes = (major, major * rng.uniform(*aspect))
        self.tilt, self.phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        rms_radius = np.sqrt((self.axes[0] ** 2 + self.axes[1] ** 2) / 2)
        self.omega = rng.choice([-1.0, 1.0]) * (speed / rms_radius if rms_radius > 0 else 0.0)

    def __call__(self, t: float) -> tuple[float, float]:
        u = self.axes[0] * np.cos(self.omega * t + self.phase)
        v = self.axes[1] * np.sin(self.omega * t + self.phase)
        cos, sin = np.cos(self.tilt), np.sin(self.tilt)
        return cos * u - sin * v + self.wobble[0](t), sin * u + cos * v + self.wobble[1](t)


def texture(rng: np.random.Generator, source: str, kind: str, height: int, width: int) -> np.ndarray:
    """An RGB texture of at least (height, width): a dead-leaves image or a photo of the split."""
    if source == "dead_leaves":
        return dead_leaves(rng, height, width, PHOTOS[kind]["backgrounds"] + PHOTOS[kind]["objects"])
    image = as_rgb(photo_at(source, max(height, width)), rng)
    return image[:, ::-1] if rng.random() < 0.5 else image


class Scene:
    """One deterministic scene: background + camera path + foreground objects, rendered per frame.

    ``scene`` is a plan entry: ``kind`` (train/val/test), ``seed`` and ``background`` (a photo name
    or ``"dead_leaves"``).
    """

    def __init__(self, cfg, scene: dict):
        rng = np.random.default_rng(scene["seed"])
        kind = "test" if scene["kind"] == "test" else "train"
        h, w = cfg.height, cfg.width
        side = round(cfg.background_scale * max(h, w))
        background = texture(rng, scene["background"], kind, side, side)
        self.speed = log_uniform(rng, *cfg.speed)
        self.background = np.stack([ndi.spline_filter(c, order=3, mode="mirror", output=np.float32)
                                    for c in np.moveaxis(background, -1, 0)])

        # Camera: roll and zoom are small; the translation budget is what the rotated, zoomed
        # view leaves inside the background (mirror padding only guards rounding).
        self.roll = _Wave(rng, np.deg2rad(cfg.rotation_deg), 0.25 * self.speed / (0.5 * np.hypot(h, w)))
        self.zoom = _Wave(rng, cfg.zoom, 0.15 * self.speed / (0.5 * max(h, w)))
        angle, extent = np.deg2rad(cfg.rotation_deg), np.exp(cfg.zoom)
        view = (extent * (h * np.cos(angle) + w * np.sin(angle)), extent * (w * np.cos(angle) + h * np.sin(angle)))
        self.shake = [_Wave(rng, 0, cfg.shake * self.speed / np.sqrt(2), periods=(16, 60)) for _ in range(2)]
        room = [max(0.0, (background.shape[a] - view[a]) / 2 - self.shake[a].bound - 2) for a in range(2)]
        self.pan = _Orbit(rng, min(room), self.speed, aspect=(0.75, 1.0), size=(0.85, 1.0))
        self.centre = (np.array(background.shape[:2]) - 1) / 2
        grid = np.mgrid[0:h, 0:w].astype(np.float64)
        self.grid = grid - np.array([(h - 1) / 2, (w - 1) / 2])[:, None, None]

        photos = PHOTOS[kind]
        choices = ["dead_leaves"] + [p for p in photos["objects"] + photos["backgrounds"] if p != scene["background"]]
        count = int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))
        self.object_textures = [choices[i] for i in rng.choice(len(choices), count, replace=count > len(choices))]
        self.objects = [_Object(rng, name, kind, cfg) for name in self.object_textures]

    def render(self, t: float) -> np.ndarray:
        """The sharp frame at high-rate time ``t`` as float32 (H, W, 3) in [0, 1]."""
        theta, scale = self.roll(t), float(np.exp(self.zoom(t)))
        cos, sin = np.cos(theta) * scale, np.sin(theta) * scale
        dy, dx = self.grid
        pan_y, pan_x = self.pan(t)
        cy = self.centre[0] + pan_y + self.shake[0](t) + cos * dy - sin * dx
        cx = self.centre[1] + pan_x + self.shake[1](t) + sin * dy + cos * dx
        frame = np.stack([ndi.map_coordinates(c, [cy, cx], order=3, mode="mirror", prefilter=False,
                                              output=np.float32) for c in self.background], axis=-1)
        for obj in self.objects:
            obj.composite(frame, t)
        return frame.clip(0, 1)


class _Object:
    """A soft-edged textured shape with its own smooth path, rotation and scale in view space."""

    def __init__(self, rng: np.random.Generator, source: str, kind: str, cfg):
        h, w = cfg.height, cfg.width
        radius = rng.uniform(0.10, 0.22) * min(h, w)
        pad = 4
        size = int(np.ceil(2 * radius * 1.25)) + 2 * pad
        yy, xx = (np.mgrid[0:size, 0:size] - (size - 1) / 2) / radius
        # Superellipse (ellipse to rounded rectangle) with a few angular harmonics: varied blobs.
        aspect, power = rng.uniform(0.55, 1.0), rng.choice([2.0, 2.0, 4.0])
        phi = np.arctan2(yy, xx)
        wobble = 1 + sum(rng.uniform(0, 0.12) * np.cos(k * phi + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
        dist = (np.abs(xx) ** power + np.abs(yy / aspect) ** power) ** (1 / power) / wobble
        alpha = np.clip((1 - dist) * radius / 1.5 + 0.5, 0, 1)  # ~1.5 px soft edge
        side = round(cfg.background_scale * max(h, w))
        surface = texture(rng, source, kind, size, size) if source == "dead_leaves" else \
            texture(rng, source, kind, side, side)
        y0 = rng.integers(0, surface.shape[0] - size + 1) if surface.shape[0] > size else 0
        x0 = rng.integers(0, surface.shape[1] - size + 1) if surface.shape[1] > size else 0
        patch = resize(surface[y0:y0 + size, x0:x0 + size], (size, size), order=1)
        rgba = np.concatenate([patch * alpha[..., None], alpha[..., None]], axis=-1)
        self.coef = np.stack([ndi.spline_filter(c, order=3, mode="nearest", output=np.float32)
                              for c in np.moveaxis(rgba.astype(np.float32), -1, 0)])
        self.half = (size - 1) / 2
        self.view = (h, w)
        speed = log_uniform(rng, *cfg.speed) * cfg.object_speed
        self.path = _Orbit(rng, 0.45 * min(h, w), speed, aspect=(0.3, 1.0), size=(0.4, 1.0))
        self.angle0 = rng.uniform(0, 2 * np.pi)
        self.spin = _Wave(rng, np.pi / 3, 0.3 * speed / radius)
        self.scale = _Wave(rng, 0.1, 0.1 * speed / radius)

    def composite(self, frame: np.ndarray, t: float) -> None:
        """Draw over ``frame`` in place with premultiplied alpha, touching only its bounding box."""
        h, w = self.view
        path_y, path_x = self.path(t)
        cy, cx = (h - 1) / 2 + path_y, (w - 1) / 2 + path_x
        scale = float(np.exp(self.scale(t)))
        reach = self.half * np.sqrt(2) * scale + 2
        y0, y1 = max(0, int(cy - reach)), min(h, int(np.ceil(cy + reach)) + 1)
        x0, x1 = max(0, int(cx - reach)), min(w, int(np.ceil(cx + reach)) + 1)
        if y0 >= y1 or x0 >= x1:
            return
        theta = self.angle0 + self.spin(t)
        cos, sin = np.cos(theta) / scale, np.sin(theta) / scale
        dy, dx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        dy, dx = dy - cy, dx - cx
        sy, sx = self.half + cos * dy + sin * dx, self.half - sin * dy + cos * dx
        # Sample alpha only inside the sprite and colour only where alpha > 0: objects are
        # large at high resolution and this is most of the rendering time.
        ys, xs = np.nonzero((sy >= 0) & (sy <= 2 * self.half) & (sx >= 0) & (sx <= 2 * self.half))
        coords = np.stack([sy[ys, xs], sx[ys, xs]])
        alpha = ndi.map_coordinates(self.coef[3], coords, order=3, mode="nearest", prefilter=False,
                                    output=np.float32).clip(0, 1)
        keep = alpha > 1e-4
        ys, xs, alpha, coords = ys[keep] + y0, xs[keep] + x0, alpha[keep, None], coords[:, keep]
        rgb = np.stack([ndi.map_coordinates(c, coords, order=3, mode="nearest", prefilter=False,
                                            output=np.float32) for c in self.coef[:3]], axis=-1)
        frame[ys, xs] = frame[ys, xs] * (1 - alpha) + rgb.clip(0, 1)
