"""Dataset readers: every layout, natural order, image conversions, and each error message."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from bench_deblur.datasets import Sequence, find_sequences, load_sequence, read_frame
from bench_deblur.errors import UserError

BLUR_SHARP = {"native": ("blur", "sharp"), "gopro": ("blur_gamma", "sharp"), "dvd": ("input", "GT"),
              "bsd": ("Blur/RGB", "Sharp/RGB")}


def _frame(value: int, shape=(8, 10)) -> np.ndarray:
    return np.full((*shape, 3), value, np.uint8)


def _write_seq(folder: Path, layout: str, count: int = 3, names=None, suffix: str = ".png") -> None:
    """Blurry frame i has value 10*i + 1 and sharp frame i has 10*i + 2, so pairing is checkable."""
    blur_dir, sharp_dir = BLUR_SHARP[layout]
    names = names or [f"{i:05d}{suffix}" for i in range(count)]
    for i, name in enumerate(names):
        for sub, offset in ((blur_dir, 1), (sharp_dir, 2)):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            iio.imwrite(folder / sub / name, _frame(10 * i + offset))


@pytest.mark.parametrize("layout", list(BLUR_SHARP))
def test_each_layout_auto_and_explicit(tmp_path, layout):
    for seq in ("walk", "car"):
        _write_seq(tmp_path / seq, layout)
    for requested in ("auto", "gopro" if layout == "native" else layout):
        sequences = find_sequences(tmp_path, layout=requested)
        assert [s.name for s in sequences] == ["car", "walk"]
        blur, sharp = load_sequence(sequences[0])
        assert blur.shape == sharp.shape == (3, 8, 10, 3) and blur.dtype == np.float32
        np.testing.assert_allclose(blur[:, 0, 0, 0] * 255, [1, 11, 21], atol=1e-4)
        np.testing.assert_allclose(sharp[:, 0, 0, 0] * 255, [2, 12, 22], atol=1e-4)


def test_gopro_prefers_blur_and_blur_dir_selects(tmp_path):
    _write_seq(tmp_path / "s", "gopro")
    (tmp_path / "s/blur").mkdir()
    iio.imwrite(tmp_path / "s/blur/a.png", _frame(0))
    with pytest.raises(UserError, match="3 sharp frames"):  # "blur" (1 frame) is preferred
        find_sequences(tmp_path, layout="gopro")
    assert len(find_sequences(tmp_path, blur_dir="blur_gamma")[0].blur) == 3
    with pytest.raises(UserError, match="blur_dir='input': only the native and gopro"):
        find_sequences(tmp_path, layout="dvd", blur_dir="input")


def test_natural_order_mixed_formats_and_ignored_files(tmp_path):
    names = ["f2.jpg", "f10.bmp", "f1.tif", "F3.PNG"]
    _write_seq(tmp_path / "s", "native", names=names)
    (tmp_path / "s/blur/notes.txt").write_text("x")
    (tmp_path / "s/sharp/.hidden.png").write_bytes(b"")
    (tmp_path / "not_a_sequence").mkdir()
    [seq] = find_sequences(tmp_path)
    assert [p.name for p in seq.blur] == ["f1.tif", "f2.jpg", "F3.PNG", "f10.bmp"]
    blur, _ = load_sequence(seq, max_frames=2)
    np.testing.assert_allclose(blur[:, 0, 0, 0] * 255, [21, 1], atol=2)  # jpg is lossy


def test_read_frame_grey_rgba_and_16_bit(tmp_path):
    grey = np.arange(80, dtype=np.uint8).reshape(8, 10)
    iio.imwrite(tmp_path / "grey.png", grey)
    out = read_frame(tmp_path / "grey.png")
    assert out.shape == (8, 10, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, np.repeat(grey[..., None], 3, -1) / 255, atol=1e-6)

    rgba = np.dstack([_frame(200), np.full((8, 10), 7, np.uint8)])
    iio.imwrite(tmp_path / "rgba.png", rgba)
    np.testing.assert_allclose(read_frame(tmp_path / "rgba.png"), 200 / 255, atol=1e-6)

    grey16 = np.full((8, 10), 32768, np.uint16)
    iio.imwrite(tmp_path / "grey16.png", grey16)
    np.testing.assert_allclose(read_frame(tmp_path / "grey16.png"), 32768 / 65535, atol=1e-6)

    rgb16 = np.zeros((8, 10, 3), np.uint16)
    rgb16[..., 0], rgb16[..., 1], rgb16[..., 2] = 65535, 32768, 1000
    iio.imwrite(tmp_path / "rgb16.tif", rgb16)
    np.testing.assert_allclose(read_frame(tmp_path / "rgb16.tif")[0, 0], [1, 32768 / 65535, 1000 / 65535], atol=1e-6)
    _write_png16(tmp_path / "rgb16.png", rgb16)
    np.testing.assert_allclose(read_frame(tmp_path / "rgb16.png")[0, 0], rgb16[0, 0] / 65535, atol=1 / 255)


def _write_png16(path: Path, image: np.ndarray) -> None:
    """A 16-bit RGB PNG, which Pillow cannot write: IHDR bit depth 16, colour type 2, no filter."""
    h, w, _ = image.shape
    raw = b"".join(b"\0" + image[row].astype(">u2").tobytes() for row in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_load_sequence_uint8_matches_files(tmp_path):
    _write_seq(tmp_path / "s", "dvd", count=4)
    [seq] = find_sequences(tmp_path)
    blur, sharp = load_sequence(seq, dtype="uint8")
    assert blur.dtype == np.uint8 and blur.shape == (4, 8, 10, 3)
    np.testing.assert_array_equal(sharp[:, 0, 0, 0], [2, 12, 22, 32])


def test_error_missing_folder(tmp_path):
    with pytest.raises(UserError, match=f"^{tmp_path / 'nope'}: dataset folder not found$"):
        find_sequences(tmp_path / "nope")


def test_error_no_sequences_and_dataset_root_hint(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=f"{tmp_path / 'empty'}: no sequences found"):
        find_sequences(tmp_path / "empty")
    _write_seq(tmp_path / "root/train/s", "native")
    with pytest.raises(UserError, match=f"pass a split folder such as {tmp_path / 'root/train'}"):
        find_sequences(tmp_path / "root")


def test_error_empty_sequence(tmp_path):
    (tmp_path / "s/blur").mkdir(parents=True)
    (tmp_path / "s/sharp").mkdir()
    with pytest.raises(UserError, match=f"{tmp_path / 's/blur'}: no frames"):
        find_sequences(tmp_path)


def test_error_count_mismatch(tmp_path):
    _write_seq(tmp_path / "s", "bsd")
    (tmp_path / "s/Sharp/RGB/00002.png").unlink()
    with pytest.raises(UserError, match=f"{tmp_path / 's'}: 3 blurry frames in RGB/ but 2 sharp frames"):
        find_sequences(tmp_path)


def test_error_missing_sharp_folder(tmp_path):
    _write_seq(tmp_path / "s", "native")
    for f in (tmp_path / "s/sharp").iterdir():
        f.unlink()
    (tmp_path / "s/sharp").rmdir()
    with pytest.raises(UserError, match=f"{tmp_path / 's'}: has blur/ but no sharp/ folder"):
        find_sequences(tmp_path)


def test_error_size_mismatch_names_both_files(tmp_path):
    _write_seq(tmp_path / "s", "native")
    iio.imwrite(tmp_path / "s/sharp/00001.png", _frame(5, shape=(8, 12)))
    [seq] = find_sequences(tmp_path)
    with pytest.raises(UserError) as info:
        load_sequence(seq)
    assert str(info.value) == (f"{tmp_path / 's/sharp/00001.png'}: frame is 12x8 "
                               f"but {tmp_path / 's/blur/00000.png'} is 10x8")


def test_error_corrupt_and_missing_image(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=f"^{tmp_path / 'bad.png'}: cannot read image"):
        read_frame(tmp_path / "bad.png")
    with pytest.raises(UserError, match=f"^{tmp_path / 'gone.png'}: frame not found$"):
        read_frame(tmp_path / "gone.png")
    seq = Sequence("s", [tmp_path / "bad.png"], [tmp_path / "bad.png"])
    with pytest.raises(UserError, match="bad.png: cannot read image"):
        load_sequence(seq)


def test_error_unknown_and_mixed_layouts(tmp_path):
    with pytest.raises(UserError, match="^layout='vimeo': expected one of auto, native, gopro, dvd, bsd$"):
        find_sequences(tmp_path, layout="vimeo")
    _write_seq(tmp_path / "a", "native")
    _write_seq(tmp_path / "b", "dvd")
    with pytest.raises(UserError, match=f"{tmp_path}: sequences mix the dvd and native layouts"):
        find_sequences(tmp_path)
    assert [s.name for s in find_sequences(tmp_path, layout="dvd")] == ["b"]


def test_errors_are_one_line(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(UserError) as info:
        read_frame(tmp_path / "bad.png")
    assert "\n" not in str(info.value)


def test_synthetic_control_splits_and_per_frame_records(tmp_path):
    """Controls come apart from the per-tau test splits; per-frame records are keyed like the evaluation's splits."""
    from bench_deblur.config import SynthConfig
    from bench_deblur.datasets import open_dataset
    from bench_deblur.synth import make_dataset

    cfg = SynthConfig(seed=1, height=32, width=32, frames=3, train_sequences=1, test_sequences=2,
                      train_taus=(7,), test_taus=(7, 9))
    manifest = make_dataset(tmp_path / "d", cfg, progress=False)
    dataset = open_dataset(tmp_path / "d")
    assert list(dataset.test_splits()) == [7, 9]
    controls = dataset.control_splits()
    assert sorted(controls) == ["random_exposure", "steady"]
    info, sequences = controls["steady"]
    assert info == manifest["control_splits"]["steady"] and [s.name for s in sequences] == ["seq000", "seq001"]
    assert {s.blur[0].parent.parent.parent.name for s in sequences} == {info["split"]}
    blur = dataset.frame_records("blur_px")
    assert sorted(blur) == ["7", "9", "random_exposure", "steady"]
    assert blur["9"]["seq001"] == manifest["splits"]["test_tau09"]["sequences"]["seq001"]["blur_px"]
    assert all(len(frames) == 3 for seqs in blur.values() for frames in seqs.values())
    assert dataset.frame_records("no_such_record") == {}


def test_plan_names_the_data_before_anything_is_made(tmp_path):
    """The preset's data, an empty folder and a custom synthetic root are still to be made; a dataset is read as is."""
    from bench_deblur.datasets.plan import DataChoice, plan_data

    data, synthesise = plan_data(DataChoice(), "smoke")
    assert synthesise and data.train == data.test and data.train.root == Path("data/smoke")
    assert data.train.layout == "native" and data.results_name("smoke") == "smoke"
    (tmp_path / "empty").mkdir()
    assert plan_data(DataChoice(data=tmp_path / "empty"), "smoke").synthesise
    home = plan_data(DataChoice(layout="native", synthetic_root=tmp_path / "lc"), "cpu")
    assert home.synthesise and home.data.train.root == tmp_path / "lc"
    for seq in ("walk", "car"):
        _write_seq(tmp_path / "gopro" / "train" / seq, "gopro")
        _write_seq(tmp_path / "gopro" / "test" / seq, "gopro")
    data, synthesise = plan_data(DataChoice(data=tmp_path / "gopro", blur_dir="blur_gamma"), "smoke")
    assert not synthesise and data.train.layout == "gopro" and data.train.blur_dir == "blur_gamma"
    assert not list(tmp_path.glob("*.lock")) and not (tmp_path / "lc").exists()


def test_plan_refuses_a_public_layout_without_its_folder_and_a_blur_dir_it_cannot_use(tmp_path):
    from bench_deblur.datasets.plan import DataChoice, plan_data

    with pytest.raises(UserError, match=r"^--layout gopro: needs --data, the gopro dataset's folder \(data/smoke is"):
        plan_data(DataChoice(layout="gopro"), "smoke")
    with pytest.raises(UserError, match="^--blur-dir blur: only the"):
        plan_data(DataChoice(blur_dir="blur"), "smoke")


def test_evaluation_data_of_a_folder_of_sequences_and_a_missing_folder(tmp_path):
    from bench_deblur.datasets.plan import evaluation_data

    for seq in ("walk", "car"):
        _write_seq(tmp_path / "clips" / seq, "native")
    splits, controls, what = evaluation_data(tmp_path / "clips")
    assert [s.name for s in splits["clips"]] == ["car", "walk"] and controls == {}
    assert what == f"every sequence in {tmp_path / 'clips'}"
    with pytest.raises(UserError, match="no such folder"):
        evaluation_data(tmp_path / "nowhere")
