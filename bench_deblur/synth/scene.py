"""One procedural high-frame-rate scene: a textured background seen by a moving camera, plus objects.

The camera moves over a background texture larger than the view (sub-pixel translation, small roll
and zoom); 0-4 independently moving, mutually occluding foreground objects (soft-edged shapes) pass
in front. Everything is a closed-form function of the high-rate time ``t``, so any frame renders on
its own and only the frames a blurry frame needs are rendered.

Two cameras (``SynthConfig.motion``). ``"handheld"`` (default) follows Boracchi & Foi (2012): a slow
intentional pan plus physiological tremor plus rare impulsive jerks, so blur length and direction
change from frame to frame and some frames come out near-sharp, as in real hand-held video, where
neighbouring frames hold what the current one lost. ``"steady"`` moves at nearly constant speed, so
every frame of a sequence is blurred alike: the control where neighbours add little.

Motion rule: the camera's speed scale, in pixels per high-rate frame, is drawn log-uniformly from
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


TREMOR_PERIODS = (20.0, 240.0)  # high-rate frames: physiological tremor, 1-12 Hz at 240 fps
SWAY_PERIODS, SWAY_DEPTH = (120.0, 480.0), (0.9, 1.0)  # the tremor's intensity waxes and wanes (0.5-2 Hz)
PAN, TREMOR, JERK = 0.15, 1.0, 2.5  # RMS pan speed, RMS tremor speed and jerk peak speed / the speed scale
JERK_BLOCK, JERK_CHANCE = 90, 0.75  # at most one jerk per block of high-rate frames, present with this chance
JERK_FRAMES, RETURN_FRAMES = (3.0, 8.0), (30.0, 80.0)  # a jerk's duration, then the hand's slower correction


def _step(x: float) -> float:
    """A raised-cosine step from 0 (x <= 0) to 1 (x >= 1): a smooth bump in velocity."""
    return float((1 - np.cos(np.pi * np.clip(x, 0, 1))) / 2)


class _Sway:
    """How hard the hand shakes over time: ``1 + depth*cos`` of a slow phase, normalised to unit RMS.

    A hand-held camera has steadier and shakier moments (the operator braces, breathes, steps), so
    blur comes and goes within a sequence instead of staying at one level.
    """

    def __init__(self, rng: np.random.Generator):
        self.freq = 2 * np.pi / log_uniform(rng, *SWAY_PERIODS)
        self.phase, self.depth = rng.uniform(0, 2 * np.pi), rng.uniform(*SWAY_DEPTH)
        d2 = self.depth ** 2
        self.norm = np.sqrt(1 + 3 * d2 + 3 * d2 ** 2 / 8)  # RMS of (1 + depth*cos)^2 over a period

    @property
    def bound(self) -> float:
        return float((1 + self.depth) ** 2 / self.norm)

    def __call__(self, t: float) -> float:
        return float((1 + self.depth * np.cos(self.freq * t + self.phase)) ** 2 / self.norm)


class _Tremor(_Wave):
    """Tremor on one axis: one sinusoid per log-spaced band of :data:`TREMOR_PERIODS`, equal velocity amplitudes.

    One period per band (drawn log-uniformly inside it), so every scene shakes both slowly and fast.
    """

    def __init__(self, rng: np.random.Generator, rms_speed: float, n: int = 3):
        edges = np.log(np.geomspace(*TREMOR_PERIODS, n + 1))
        self.phase = rng.uniform(0, 2 * np.pi, n)
        self.freq = 2 * np.pi / np.exp(rng.uniform(edges[:-1], edges[1:]))
        self.amp = rms_speed * np.sqrt(2 / n) / self.freq


class _Jerks:
    """Rare impulsive jerks in random directions: a raised-cosine step out, then a slower one back (the hand corrects).

    Each block of :data:`JERK_BLOCK` frames holds one jerk with probability :data:`JERK_CHANCE`, at a
    random time, drawn from the block's own seed and ending inside the block: closed form at any ``t``,
    and at most one jerk displaces the view at a time.
    """

    def __init__(self, rng: np.random.Generator, peak_speed: float):
        self.seed, self.peak = int(rng.integers(2 ** 63)), peak_speed

    @property
    def bound(self) -> float:
        return 2 * JERK_FRAMES[1] * self.peak / np.pi

    def __call__(self, t: float) -> tuple[float, float]:
        block = int(t // JERK_BLOCK)
        rng = np.random.default_rng([self.seed, block])
        if rng.random() >= JERK_CHANCE:
            return 0.0, 0.0
        out, back = rng.uniform(*JERK_FRAMES), rng.uniform(*RETURN_FRAMES)
        start = block * JERK_BLOCK + rng.uniform(0, JERK_BLOCK - out - back)
        size, angle = 2 * out * self.peak / np.pi, rng.uniform(0, 2 * np.pi)  # peak velocity = self.peak
        shift = size * (_step((t - start) / out) - _step((t - start - out) / back))
        return shift * np.sin(angle), shift * np.cos(angle)


class _SteadyCamera:
    """``motion="steady"``: an :class:`_Orbit` at nearly constant speed plus mild shake; small roll and zoom.

    ``space`` is the free room (pixels, per axis) the rotated, zoomed view leaves inside the background.
    """

    def __init__(self, rng: np.random.Generator, cfg, speed: float, space: list[float]):
        h, w = cfg.height, cfg.width
        self.roll = _Wave(rng, np.deg2rad(cfg.rotation_deg), 0.25 * speed / (0.5 * np.hypot(h, w)))
        self.zoom = _Wave(rng, cfg.zoom, 0.15 * speed / (0.5 * max(h, w)))
        self.shake = [_Wave(rng, 0, cfg.shake * speed / np.sqrt(2), periods=(16, 60)) for _ in range(2)]
        room = [max(0.0, space[a] - self.shake[a].bound - 2) for a in range(2)]  # mirror padding only guards rounding
        self.pan = _Orbit(rng, min(room), speed, aspect=(0.75, 1.0), size=(0.85, 1.0))

    def position(self, t: float) -> tuple[float, float]:
        """The view centre's offset from the background centre, in pixels (y, x)."""
        pan_y, pan_x = self.pan(t)
        return pan_y + self.shake[0](t), pan_x + self.shake[1](t)


class _HandheldCamera:
    """``motion="handheld"``: slow pan + swaying tremor + rare jerks (Boracchi & Foi 2012); small roll and zoom.

    Velocity is the sum of the three, so it swings in size and direction within a sequence and now
    and then passes near zero. The pan sweeps a quarter of the room; tremor and jerks get what they
    need up to the other three quarters (scaled down together where the room is smaller).
    """

    def __init__(self, rng: np.random.Generator, cfg, speed: float, space: list[float]):
        h, w = cfg.height, cfg.width
        self.roll = _Wave(rng, np.deg2rad(cfg.rotation_deg), 0.25 * speed / (0.5 * np.hypot(h, w)))
        self.zoom = _Wave(rng, cfg.zoom, 0.15 * speed / (0.5 * max(h, w)))
        self.sway = _Sway(rng)
        self.tremor = [_Tremor(rng, TREMOR * speed / np.sqrt(2)) for _ in range(2)]
        self.jerks = _Jerks(rng, JERK * speed)
        room = [max(0.0, space[a] - 2) for a in range(2)]
        shake = [self.sway.bound * self.tremor[a].bound + self.jerks.bound for a in range(2)]
        self.squeeze = min(1.0, *(3 / 4 * room[a] / shake[a] for a in range(2) if shake[a] > 0))
        self.pan = [_Wave(rng, room[a] / 4, PAN * speed / np.sqrt(2)) for a in range(2)]

    def position(self, t: float) -> tuple[float, float]:
        """The view centre's offset from the background centre, in pixels (y, x)."""
        sway, jerk = self.sway(t), self.jerks(t)
        return tuple(self.pan[a](t) + self.squeeze * (sway * self.tremor[a](t) + jerk[a]) for a in range(2))


def texture(rng: np.random.Generator, source: str, kind: str, height: int, width: int) -> np.ndarray:
    """An RGB texture of at least (height, width): a dead-leaves image or a photo of the split."""
    if source == "dead_leaves":
        return dead_leaves(rng, height, width, PHOTOS[kind]["backgrounds"] + PHOTOS[kind]["objects"])
    image = as_rgb(photo_at(source, max(height, width)), rng)
    return image[:, ::-1] if rng.random() < 0.5 else image


class Scene:
    """One deterministic scene: background + camera path + foreground objects, rendered per frame.

    ``scene`` is a plan entry: ``kind`` (train/val/test), ``seed`` and ``background`` (a photo name
    or ``"dead_leaves"``); ``motion`` overrides ``cfg.motion`` (the steady control of a hand-held set).
    """

    def __init__(self, cfg, scene: dict, motion: str | None = None):
        rng = np.random.default_rng(scene["seed"])
        kind = "test" if scene["kind"] == "test" else "train"
        h, w = cfg.height, cfg.width
        side = round(cfg.background_scale * max(h, w))
        background = texture(rng, scene["background"], kind, side, side)
        self.speed = log_uniform(rng, *cfg.speed)
        self.background = np.stack([ndi.spline_filter(c, order=3, mode="mirror", output=np.float32)
                                    for c in np.moveaxis(background, -1, 0)])

        # Translation room: what the rotated, zoomed view leaves inside the background. The steady
        # camera is drawn from the scene's stream whatever the motion, so the objects drawn after it
        # are the same under either camera (the steady control test set films the same scenes).
        angle, extent = np.deg2rad(cfg.rotation_deg), np.exp(cfg.zoom)
        view = (extent * (h * np.cos(angle) + w * np.sin(angle)), extent * (w * np.cos(angle) + h * np.sin(angle)))
        space = [(background.shape[a] - view[a]) / 2 for a in range(2)]
        self.camera = _SteadyCamera(rng, cfg, self.speed, space)
        if (motion or cfg.motion) == "handheld":
            self.camera = _HandheldCamera(np.random.default_rng(scene["seed"] + [5]), cfg, self.speed, space)
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
        theta, scale = self.camera.roll(t), float(np.exp(self.camera.zoom(t)))
        cos, sin = np.cos(theta) * scale, np.sin(theta) * scale
        dy, dx = self.grid
        shift_y, shift_x = self.camera.position(t)
        cy = self.centre[0] + shift_y + cos * dy - sin * dx
        cx = self.centre[1] + shift_x + sin * dy + cos * dx
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
