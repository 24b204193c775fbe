"""Synthetic data: Eq. 1 exactness, determinism, split disjointness, tau-only variation, camera motion, controls, calibration."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from bench_deblur import synth
from bench_deblur.config import SynthConfig
from bench_deblur.datasets import find_sequences, load_sequence
from bench_deblur.datasets.layouts import manifest_hash, manifest_test_splits
from bench_deblur.errors import UserError
from bench_deblur.synth import make_dataset, textures, writer
from bench_deblur.synth import scene as synth_scene

TINY = SynthConfig(seed=3, height=32, width=48, frames=4, train_sequences=2, val_sequences=1, test_sequences=1,
                   keep_hfr=True, train_photo_fraction=0.5, test_photo_fraction=1.0, objects=(2, 4))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synth") / "tiny"
    return root, make_dataset(root, TINY, progress=False)


def _png(path: Path) -> np.ndarray:
    return iio.imread(path).astype(np.float64) / 255


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean((a - b) ** 2)))


def _check_eq1(root: Path, manifest: dict, gamma: float | None) -> int:
    """Re-average the kept high-rate frames of every blurry frame; return how many were checked."""
    checked, config = 0, manifest["config"]
    for split, entry in manifest["splits"].items():
        for name, seq in entry["sequences"].items():
            folder = root / split / name
            for n in range(seq["frames"]):
                tau = seq["exposure"][n] if "exposure" in seq else seq["tau"]
                window = writer.blur_window(n, tau, seq["spacing"], max(config["train_taus"] + config["test_taus"]))
                hfr = np.stack([_png(folder / "hfr" / f"{t:06d}.png") for t in window])
                mean = hfr.mean(0) if gamma is None else (hfr ** gamma).mean(0) ** (1 / gamma)
                blur = _png(folder / "blur" / f"{n:06d}.png")
                assert np.abs(blur - mean).max() <= 0.5 / 255 + 1e-9, (split, name, n)
                np.testing.assert_array_equal(_png(folder / "sharp" / f"{n:06d}.png"), hfr[tau // 2])
                checked += 1
    return checked


def test_layout_manifest_and_hashes(tiny):
    root, manifest = tiny
    assert manifest_test_splits(root) == {7: "test_tau07", 9: "test_tau09", 11: "test_tau11", 13: "test_tau13",
                                 15: "test_tau15"}
    assert manifest["config"] == json.loads(json.dumps(dataclasses.asdict(TINY)))
    assert manifest["resolution"] == [32, 48] and manifest["seed"] == 3 and manifest["gamma"] is None
    assert set(manifest["splits"]) == {"train", "val", "test_steady_tau11", "test_random",
                                       *manifest_test_splits(root).values()}
    assert manifest["scenes"] == {"train": 2, "val": 1, "test": 1}
    for split, entry in manifest["splits"].items():
        sequences = find_sequences(root / split)
        assert [s.name for s in sequences] == sorted(entry["sequences"])
        blur, sharp = load_sequence(sequences[0])
        assert blur.shape == sharp.shape == (4, 32, 48, 3)
        for name, seq in entry["sequences"].items():
            tau = seq["tau"] or max(seq["exposure"])
            assert tau <= seq["spacing"] < 2 * tau
            assert len([f for f in seq["files"] if f.startswith("blur/")]) == 4
            for rel, digest in seq["files"].items():
                assert writer.hashlib.sha256((root / split / name / rel).read_bytes()).hexdigest() == digest
            assert seq["camera_speed_px"] > 0 and np.isfinite(seq["input_psnr"])
    assert not (root / writer.MARKER).exists()


def test_eq1_blur_is_mean_of_kept_hfr_frames(tiny):
    root, manifest = tiny
    assert _check_eq1(root, manifest, gamma=None) == 4 * (2 + 1 + 5 + 2)


def test_eq1_in_linear_light(tmp_path):
    cfg = dataclasses.replace(TINY, train_sequences=1, val_sequences=0, test_taus=(7, 11), train_taus=(9,), gamma=2.2)
    manifest = make_dataset(tmp_path / "g", cfg, progress=False)
    assert manifest["gamma"] == 2.2
    assert _check_eq1(tmp_path / "g", manifest, gamma=2.2) == 4 * 5


def test_noise_is_added_to_blurry_frames_only(tmp_path):
    cfg = dataclasses.replace(TINY, train_sequences=0, val_sequences=0, test_taus=(9,), frames=3, controls=False)
    clean = make_dataset(tmp_path / "clean", cfg, progress=False)
    make_dataset(tmp_path / "noisy", dataclasses.replace(cfg, noise_std=0.03), progress=False)
    seq = clean["splits"]["test_tau09"]["sequences"]["seq000"]
    diff = np.stack([_png(tmp_path / "noisy/test_tau09/seq000" / f) - _png(tmp_path / "clean/test_tau09/seq000" / f)
                     for f in seq["files"] if f.startswith("blur/")])
    assert 0.02 < diff.std() < 0.035
    for f in seq["files"]:
        if not f.startswith("blur/"):
            np.testing.assert_array_equal(_png(tmp_path / "noisy/test_tau09/seq000" / f),
                                          _png(tmp_path / "clean/test_tau09/seq000" / f))


def test_test_splits_differ_only_in_tau(tiny):
    """All test splits come from one high-rate sequence; splits with equal T share their GT frames."""
    root, manifest = tiny
    seqs = {split: manifest["splits"][split]["sequences"]["seq000"] for split in manifest_test_splits(root).values()}
    assert {s["background"] for s in seqs.values()} == {seqs["test_tau15"]["background"]}
    assert [s["spacing"] for s in seqs.values()] == [13, 15, 15, 15, 15]  # default rule, tau_max = 15
    for split in ("test_tau09", "test_tau11", "test_tau13"):
        for n in range(4):
            rel = f"sharp/{n:06d}.png"
            assert seqs[split]["files"][rel] == seqs["test_tau15"]["files"][rel]
    hfr7 = {f for f in seqs["test_tau07"]["files"] if f.startswith("hfr/")}
    shared = hfr7 & set(seqs["test_tau15"]["files"])
    assert len(shared) >= 10
    assert all(seqs["test_tau07"]["files"][f] == seqs["test_tau15"]["files"][f] for f in shared)
    blur = {split: _png(root / split / "seq000/blur/000002.png") for split in seqs}
    assert len({b.tobytes() for b in blur.values()}) == 5


def test_train_and_test_never_share_a_photo_or_a_seed(tiny):
    root, manifest = tiny
    assert not set(synth.TRAIN_PHOTOS) & set(synth.TEST_PHOTOS)
    assert manifest["photos"] == {"train": list(synth.TRAIN_PHOTOS), "test": list(synth.TEST_PHOTOS)}
    seeds = {}
    for split, entry in manifest["splits"].items():
        allowed = set(synth.TEST_PHOTOS if split.startswith("test") else synth.TRAIN_PHOTOS) | {"dead_leaves"}
        for seq in entry["sequences"].values():
            assert {seq["background"], *seq["objects"]} <= allowed
            assert 2 <= len(seq["objects"]) <= 4
            seeds.setdefault("test" if split.startswith("test") else split, set()).add(tuple(seq["seed"]))
    assert not seeds["train"] & seeds["test"] and not seeds["val"] & seeds["test"] and not seeds["train"] & seeds["val"]


def test_dead_leaves_texture_photos_come_from_the_split(monkeypatch):
    """A dead-leaves image for a test scene crops only test photos, and for a train scene only train photos."""
    used = []
    original = textures.photo_at
    monkeypatch.setattr(textures, "photo_at", lambda name, side: used.append(name) or original(name, side))
    for kind, allowed in (("train", synth.TRAIN_PHOTOS), ("test", synth.TEST_PHOTOS)):
        used.clear()
        image = synth_scene.texture(np.random.default_rng(0), "dead_leaves", kind, 64, 64)
        assert image.shape == (64, 64, 3) and 0 <= image.min() and image.max() <= 1
        assert used and set(used) <= set(allowed), (kind, set(used))


def test_dead_leaves_are_new_images_with_power_law_sizes():
    """Different seeds give different images; most shapes are small and a few are large (r^-3)."""
    a = textures.dead_leaves(np.random.default_rng(1), 64, 64, synth.TRAIN_PHOTOS)
    b = textures.dead_leaves(np.random.default_rng(2), 64, 64, synth.TRAIN_PHOTOS)
    assert np.abs(a - b).mean() > 0.05
    np.testing.assert_array_equal(a, textures.dead_leaves(np.random.default_rng(1), 64, 64, synth.TRAIN_PHOTOS))
    rng = np.random.default_rng(0)
    exponent = 1 - textures.DEAD_LEAVES_ALPHA
    r = (1.5 ** exponent + rng.random(20000) * (20 ** exponent - 1.5 ** exponent)) ** (1 / exponent)
    assert np.mean(r < 3) > 0.7 and np.mean(r > 10) < 0.05


def test_train_taus_are_mixed_and_balanced(tmp_path):
    cfg = dataclasses.replace(TINY, train_sequences=5, val_sequences=0, test_sequences=0, frames=1, keep_hfr=False,
                              height=16, width=16)
    manifest = make_dataset(tmp_path / "d", cfg, progress=False)
    assert sorted(s["tau"] for s in manifest["splits"]["train"]["sequences"].values()) == [7, 9, 11, 13, 15]


def test_deterministic_by_seed_and_idempotent(tiny, tmp_path):
    root, manifest = tiny
    again = make_dataset(tmp_path / "again", TINY, progress=False)
    assert again == manifest and manifest_hash(tmp_path / "again") == manifest_hash(root)
    other = make_dataset(tmp_path / "other", dataclasses.replace(TINY, seed=4), progress=False)
    assert other["splits"]["train"] != manifest["splits"]["train"]
    frame = root / "train/seq000/blur/000000.png"
    stamp = frame.stat().st_mtime_ns
    assert make_dataset(root, TINY, progress=False) == manifest
    assert frame.stat().st_mtime_ns == stamp


def test_interrupted_generation_is_redone(tmp_path, monkeypatch):
    cfg = dataclasses.replace(TINY, keep_hfr=False, test_taus=(7, 9))
    reference = make_dataset(tmp_path / "ref", cfg, progress=False)
    calls = []

    def failing(path, image):
        calls.append(path)
        if len(calls) > 5:
            raise KeyboardInterrupt
        return original(path, image)

    original = writer.write_png
    monkeypatch.setattr(writer, "write_png", failing)
    with pytest.raises(KeyboardInterrupt):
        make_dataset(tmp_path / "d", cfg, progress=False)
    monkeypatch.undo()
    assert not (tmp_path / "d/manifest.json").exists()
    assert make_dataset(tmp_path / "d", cfg, progress=False) == reference


def test_changed_config_regenerates_without_stale_splits(tmp_path):
    cfg = dataclasses.replace(TINY, keep_hfr=False, train_sequences=1)
    make_dataset(tmp_path / "d", cfg, progress=False)
    smaller = dataclasses.replace(cfg, test_taus=(9,), frames=2)
    manifest = make_dataset(tmp_path / "d", smaller, progress=False)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["manifest.json", "test_random", "test_steady_tau09",
                                                                  "test_tau09", "train", "val"]
    assert len(list((tmp_path / "d/train/seq000/blur").iterdir())) == 2
    assert manifest["config"]["test_taus"] == [9]


def test_refuses_foreign_folder(tmp_path):
    (tmp_path / "photos.txt").write_text("mine")
    with pytest.raises(UserError, match=f"{tmp_path}: folder is not empty"):
        make_dataset(tmp_path, TINY, progress=False)
    with pytest.raises(UserError, match="manifest.json: file not found"):
        manifest_hash(tmp_path)
    with pytest.raises(UserError, match="manifest.json: file not found"):
        manifest_test_splits(tmp_path)


@pytest.mark.parametrize("change, message", [
    ({"spacing": 20}, "spacing T=20: expected tau <= T < 2*tau for tau=7"),
    ({"spacing": 8}, "spacing T=8: expected tau <= T < 2*tau for tau=9"),
    ({"test_taus": (7, 8)}, "test_taus: tau=8: expected a positive odd integer"),
    ({"train_taus": (-1,)}, "train_taus: tau=-1: expected a positive odd integer"),
    ({"test_taus": ()}, "test_taus=(): expected at least one tau"),
    ({"height": 8}, "height=8: expected an integer >= 16"),
    ({"gamma": 0.0}, "gamma=0.0: expected a positive number"),
    ({"objects": (3, 1)}, "objects=(3, 1): expected (min, max)"),
    ({"speed": (0.5, 0.1)}, "speed=(0.5, 0.1): expected (low, high) px per frame"),
    ({"train_photo_fraction": 1.5}, "train_photo_fraction=1.5: expected a number in [0, 1]"),
    ({"train_frames": 0}, "train_frames=0: expected an integer >= 1 or None"),
    ({"motion": "shaky"}, "motion='shaky': expected one of handheld, steady"),
])
def test_config_errors_name_the_option(tmp_path, change, message):
    with pytest.raises(UserError, match=re.escape(message)):
        make_dataset(tmp_path / "d", dataclasses.replace(TINY, **change), progress=False)
    assert not (tmp_path / "d").exists()


def test_explicit_spacing_aligns_all_test_splits(tmp_path):
    cfg = dataclasses.replace(TINY, train_sequences=0, val_sequences=0, test_taus=(9, 11, 15), train_taus=(9,), spacing=15)
    manifest = make_dataset(tmp_path / "d", cfg, progress=False)
    seqs = [manifest["splits"][s]["sequences"]["seq000"] for s in ("test_tau09", "test_tau11", "test_tau15")]
    sharp = [{f: h for f, h in s["files"].items() if f.startswith("sharp/")} for s in seqs]
    assert sharp[0] == sharp[1] == sharp[2]


def test_calibration_quick_test_sets_span_gopro_range_with_blur_that_varies(tmp_path):
    """The quick preset's test sets (64x64, 16 scenes x 24 frames per tau): GoPro-like inputs, blur that varies.

    Held-out blurry inputs span about 24-30 dB over tau 7-15 (the mean over scenes is what the speed
    range is set on); within a sequence the per-frame input PSNR varies by at least 4 dB (std), and
    the previous frame is at least 3 dB sharper on at least 20% of frames (docs/synthetic-data.md).
    """
    from bench_deblur.config import QUICK_SYNTH

    cfg = dataclasses.replace(QUICK_SYNTH, train_sequences=0, val_sequences=0, controls=False)
    manifest = make_dataset(tmp_path / "d", cfg, progress=False, workers=2)
    score = {}
    for tau, split in manifest_test_splits(tmp_path / "d").items():
        pairs = [load_sequence(s) for s in find_sequences(tmp_path / "d" / split)[:2]]
        per_seq = [np.mean([_psnr(b, s) for b, s in zip(blur, sharp)]) for blur, sharp in pairs]
        recorded = [s["input_psnr"] for s in manifest["splits"][split]["sequences"].values()]
        np.testing.assert_allclose(recorded[:2], per_seq, atol=0.01)
        score[tau] = np.mean(recorded)
    assert 29 < score[7] < 32 and 25 < score[11] < 28 and 23 < score[15] < 26, score
    speeds = [s["camera_speed_px"] for s in manifest["splits"]["test_tau07"]["sequences"].values()]
    assert cfg.speed[0] <= min(speeds) and max(speeds) <= cfg.speed[1]
    fixed = manifest["statistics"]["fixed_tau"]
    assert fixed["within_sequence_std"] >= 4 and fixed["previous_sharper_3db"] >= 0.2, fixed


def test_steady_motion_reproduces_the_previous_camera():
    """``motion="steady"`` at version 2's speed range and background size is its camera.

    The values were recorded from it before the hand-held rule.
    """
    old = {
        "dead_leaves": [
            (0, -13.946285210405899, -9.240611928017781, 0.013397015550130207, 0.004723973285459466),
            (100, -3.883437950669286, 11.14894056283577, 0.00882316112364242, -0.01967632538496756),
        ],
        "chelsea": [
            (7, -17.24061953340806, -8.039997942984964, -0.016797154332152325, 0.0058449611642354266),
            (100, 3.82688149981495, -15.783108132621322, -0.00035377840370917884, 0.017624595025462625),
        ],
    }
    cfg = dataclasses.replace(TINY, motion="steady", speed=(0.18, 0.7), background_scale=2.0)  # version 2 calibration
    for background, values in old.items():
        camera = synth_scene.Scene(cfg, {"kind": "test", "seed": [3, 1, 0], "background": background}).camera
        for t, y, x, roll, zoom in values:
            np.testing.assert_allclose(
                [*camera.position(t), camera.roll(t), camera.zoom(t)], [y, x, roll, zoom], rtol=0, atol=1e-9
            )


def test_handheld_camera_is_deterministic_bounded_and_shares_the_objects():
    """Frames depend only on (seed, t), in any order; the view stays inside the background; the steady camera
    films the same objects."""
    cfg = dataclasses.replace(TINY, speed=(1.0, 1.0))
    plan = {"kind": "test", "seed": [3, 1, 0], "background": "dead_leaves"}
    a, b = synth_scene.Scene(cfg, plan), synth_scene.Scene(cfg, plan)
    assert isinstance(a.camera, synth_scene._HandheldCamera)
    frames = {t: a.render(t) for t in (0, 5, 300)}
    for t in (300, 0, 5):
        np.testing.assert_array_equal(b.render(t), frames[t])
    steady = synth_scene.Scene(cfg, plan, motion="steady")
    assert steady.object_textures == a.object_textures
    np.testing.assert_array_equal(steady.objects[0].coef, a.objects[0].coef)
    path = np.array([a.camera.position(t) for t in range(2000)])
    assert np.abs(path).max() < (a.background.shape[1] - max(cfg.height, cfg.width)) / 2
    speed = np.hypot(*np.diff(path, axis=0).T)
    assert speed.min() < 0.2 * np.median(speed) and speed.max() > 2 * np.median(speed)


def test_per_frame_records_match_the_written_frames(tiny):
    root, manifest = tiny
    for split, entry in manifest["splits"].items():
        for sequence in find_sequences(root / split):
            seq = entry["sequences"][sequence.name]
            assert len(seq["blur_px"]) == len(seq["input_psnr_frames"]) == seq["frames"]
            assert min(seq["blur_px"]) >= 0
            blur, sharp = load_sequence(sequence)
            psnr = [min(_psnr(b, s), 100) for b, s in zip(blur, sharp)]
            np.testing.assert_allclose(seq["input_psnr_frames"], psnr, atol=1e-3)
            assert seq["input_psnr"] == pytest.approx(np.mean(seq["input_psnr_frames"]), abs=2e-3)


def test_control_splits(tiny):
    """Steady and random-exposure controls: same scenes, not per-tau test sets, windows centred on the fixed-tau ones."""
    root, manifest = tiny
    assert set(manifest["control_splits"]) == {"steady", "random_exposure"}
    assert manifest["control_splits"]["steady"]["split"] == "test_steady_tau11"
    assert manifest["control_splits"]["random_exposure"]["sharp_below"] == 5
    controls = {info["split"] for info in manifest["control_splits"].values()}
    assert not controls & set(manifest["test_splits"].values())
    fixed = manifest["splits"]["test_tau15"]["sequences"]["seq000"]
    steady = manifest["splits"]["test_steady_tau11"]["sequences"]["seq000"]
    random = manifest["splits"]["test_random"]["sequences"]["seq000"]
    assert (steady["background"], steady["objects"]) == (fixed["background"], fixed["objects"])
    assert len(random["exposure"]) == 4 and all(2 <= k <= 15 for k in random["exposure"])
    assert {f: h for f, h in random["files"].items() if f.startswith("sharp/")} == {
        f: h for f, h in fixed["files"].items() if f.startswith("sharp/")
    }
    for split in [*manifest["test_splits"].values(), *controls, "fixed_tau"]:
        assert set(manifest["statistics"][split]) == {
            "mean_input_psnr",
            "psnr_of_mean_mse",
            "within_sequence_std",
            "previous_sharper_3db",
            "near_sharp_35db",
            "mean_blur_px",
        }


def test_steady_data_has_no_steady_control_and_controls_can_be_off(tmp_path):
    cfg = dataclasses.replace(TINY, train_sequences=0, val_sequences=0, test_taus=(9,), frames=2, keep_hfr=False)
    steady = make_dataset(tmp_path / "s", dataclasses.replace(cfg, motion="steady"), progress=False)
    assert set(steady["control_splits"]) == {"random_exposure"} and "steady" in steady["motion_rule"]
    off = make_dataset(tmp_path / "o", dataclasses.replace(cfg, controls=False), progress=False)
    assert off["control_splits"] == {} and set(off["splits"]) == {"test_tau09"}
