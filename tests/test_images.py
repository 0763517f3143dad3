"""The one reader of users' pictures (models.images): odd but valid files converted, bad ones refused in one
sentence, a decompression bomb never decoded; a folder indexed from headers only, every bad entry skipped with why;
and the interpolation's "Add image file…" reading through it."""
from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest
from PIL import Image, ImageFile
from picture_files import (BLUE, RED, animated_gif, bomb_png, cmyk_jpeg, exif_rotated_jpeg, extreme_aspect,
                           grey16_gradient, half_transparent_white, make_folder, palette_with_transparency, solid,
                           truncated_png)

from explorer.views.interpolate.image_file import ImageFileError, load_image
from models.images import PictureError, check_file, index_folder, pixel_limit, probe, read_picture


def one_sentence(err: BaseException, name: str) -> str:
    text = str(err)
    assert "\n" not in text and name in text and "Traceback" not in text, text
    return text


# ---------------------------------------------------------------------------------------------------------------
# Odd but valid pictures

def test_a_16_bit_grey_gradient_keeps_its_whole_range(tmp_path):
    path = grey16_gradient(tmp_path / "ramp16.png")
    grey = read_picture(path, channels=1)
    assert grey.shape == (16, 256) and grey.dtype == np.float32
    assert grey.min() == 0.0 and grey.max() == pytest.approx(1.0)
    assert grey.mean() == pytest.approx(0.5, abs=0.01)             # not 99.6 % white, as clipping to 8 bits gave
    assert np.all(np.diff(grey[0]) > 0)                            # every level kept: strictly rising
    colour = read_picture(path, channels=3, size=32)
    assert colour.shape == (32, 32, 3) and np.allclose(colour[..., 0], colour[..., 2])
    # the keyframe reader of the interpolation goes through the same reader (dark ground: kept as it is)
    key = load_image(path, (28, 28))
    assert key.shape == (28, 28) and (key > 0.99).mean() < 0.1 and 0.3 < key.mean() < 0.7


def test_cmyk_becomes_rgb(tmp_path):
    rgb = read_picture(cmyk_jpeg(tmp_path / "cmyk.jpg"))
    r, g, b = rgb.reshape(-1, 3).mean(axis=0)
    assert r > 0.8 and g < 0.2 and b < 0.2


def test_a_palette_with_transparency_shows_the_ground(tmp_path):
    path = palette_with_transparency(tmp_path / "p.png")
    dark = read_picture(path)
    assert np.allclose(dark[0, 0], 0.0) and dark[10, 10, 1] > 0.7 and dark[10, 10, 0] < 0.1
    light = read_picture(path, ground=1.0)
    assert np.allclose(light[0, 0], 1.0)


def test_alpha_is_composited_on_the_ground(tmp_path):
    path = half_transparent_white(tmp_path / "a.png")
    assert read_picture(path, channels=1) == pytest.approx(128 / 255, abs=0.01)
    assert read_picture(path, channels=3, ground=(0.0, 0.0, 1.0))[0, 0] == pytest.approx(
        [128 / 255, 128 / 255, 1.0], abs=0.01)


def test_an_animation_gives_its_first_frame(tmp_path):
    rgb = read_picture(animated_gif(tmp_path / "anim.gif"))
    assert rgb[..., 0].mean() > 0.7 and rgb[..., 1].mean() < 0.3


def test_the_exif_orientation_turns_the_picture_upright(tmp_path):
    rgb = read_picture(exif_rotated_jpeg(tmp_path / "turned.jpg"))
    assert rgb.shape == (40, 20, 3)                                 # stored 40 wide, shown 20 wide
    top, bottom = rgb[:15].reshape(-1, 3).mean(axis=0), rgb[25:].reshape(-1, 3).mean(axis=0)
    assert top[0] > top[2] + 0.4 and bottom[2] > bottom[0] + 0.4     # red on top, blue below


def test_extreme_aspect_ratios_are_resized_and_cropped_without_blowing_up(tmp_path):
    strip = extreme_aspect(tmp_path / "strip.png", 20_000, 2)
    tall = extreme_aspect(tmp_path / "tall.png", 1, 30_000)
    for path in (strip, tall):
        t0 = time.perf_counter()
        rgb = read_picture(path, size=32)
        assert rgb.shape == (32, 32, 3) and time.perf_counter() - t0 < 2.0
        assert rgb[..., 0].mean() == pytest.approx(200 / 255, abs=0.02)
    assert read_picture(strip, within=100).shape == (1, 100, 3)     # the longer side bounded, the aspect kept


def test_resize_keeps_the_aspect_then_crops_the_centre(tmp_path):
    pixels = np.zeros((20, 60, 3), np.uint8)                        # blue | red | blue, 20 wide each
    pixels[:, :20], pixels[:, 20:40], pixels[:, 40:] = BLUE, RED, BLUE
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    rgb = read_picture(tmp_path / "wide.png", size=16)
    assert rgb.shape == (16, 16, 3)
    assert rgb[..., 0].min() > 0.7                                  # only the red centre square is left
    grey = read_picture(tmp_path / "wide.png", channels=1, size=(8, 24))
    assert grey.shape == (8, 24) and grey[:, 12] == pytest.approx(
        (0.299 * RED[0] + 0.587 * RED[1] + 0.114 * RED[2]) / 255, abs=0.02)


def test_grey_becomes_colour_by_repetition(tmp_path):
    solid(tmp_path / "g.png", (90, 90, 90), mode="L")
    rgb = read_picture(tmp_path / "g.png")
    assert rgb.shape[-1] == 3 and np.array_equal(rgb[..., 0], rgb[..., 1])


# ---------------------------------------------------------------------------------------------------------------
# Bad files: one sentence, nothing decoded, nothing hangs, nothing runs

def test_a_decompression_bomb_is_refused_in_one_sentence_without_decoding(tmp_path):
    path = bomb_png(tmp_path / "bomb.png")
    t0 = time.perf_counter()
    with pytest.raises(PictureError) as info:
        read_picture(path, size=32)
    assert time.perf_counter() - t0 < 1.0
    text = one_sentence(info.value, "bomb.png")
    assert "limit" in text and f"{pixel_limit():,}" in text
    with pytest.raises(ImageFileError) as key:                      # the keyframe reader: a sentence, no crash
        load_image(path)
    assert "decompression bomb" in one_sentence(key.value, "bomb.png")
    # between Pillow's limit and twice it Pillow only warns: refused here all the same
    between = bomb_png(tmp_path / "big.png", 10_000, 10_000)
    with warnings.catch_warnings(), pytest.raises(PictureError, match="10,000x10,000"):
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # pytest resets the reader's filter
        probe(between)


@pytest.mark.parametrize("kind", ["empty", "truncated", "text", "folder", "missing", "eps", "fifo", "link"])
def test_a_bad_file_is_one_sentence_naming_it(kind, tmp_path):
    path = tmp_path / f"bad-{kind}.png"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        truncated_png(path)
    elif kind == "text":
        path = tmp_path / "notes.jpg"
        path.write_text("a text file named like a photo\n")
    elif kind == "folder":
        path.mkdir()
    elif kind == "eps":                         # Pillow's EPS reader would start Ghostscript: never tried here
        path = tmp_path / "drawing.eps"
        path.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto showpage\n")
    elif kind == "fifo":                        # opening a FIFO for reading would wait for a writer forever
        os.mkfifo(path)
    elif kind == "link":
        path.symlink_to(tmp_path / "nowhere.png")
    with pytest.raises(PictureError) as info:
        read_picture(path)
    one_sentence(info.value, path.name)
    with pytest.raises(ImageFileError):
        load_image(path)


def test_the_keyframe_reader_keeps_its_messages(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    with pytest.raises(ImageFileError, match="notes.png is not a picture"):
        load_image(bad)
    with pytest.raises(ImageFileError, match="there is no file missing.jpg"):
        load_image(tmp_path / "missing.jpg")


# ---------------------------------------------------------------------------------------------------------------
# A folder

def test_a_labelled_folder_is_indexed_and_every_bad_entry_skipped_with_why(tmp_path):
    paths = make_folder(tmp_path / "pics")
    index = index_folder(tmp_path / "pics")
    assert index.classes == ("blue", "red")
    names = {os.path.basename(f): label for f, label in zip(index.files, index.labels)}
    for kind in ("grey16", "cmyk", "palette", "alpha", "animated", "exif", "aspect", "link"):
        assert paths[kind].name in names, kind                      # odd but valid: kept
    assert names["link-to-image.png"] == 1 and names["palette.png"] == 0
    assert names["r000.png"] == 1 and names["b000.png"] == 0
    assert len(index) == 24 * 2 + 8 + 1                              # the truncated one's header reads: kept for now
    why = {os.path.basename(s.path): s.reason for s in index.skipped}
    assert why == {
        "empty.png": "is empty (zero bytes)",
        "notes.jpg": "is not a picture in a format read here (PNG, JPEG, GIF, BMP, WebP or TIFF)",
        "bomb.png": why["bomb.png"],
        "link-to-text.png": "is not a picture in a format read here (PNG, JPEG, GIF, BMP, WebP or TIFF)",
        "link-to-folder.png": "a link to a folder",
        "link-to-nothing.png": "a link to nothing",
        "deeper": "a folder nested deeper than the class folders",
        "stray.png": "beside the class folders (pictures go in one subfolder per class)",
        "pipe.png": "is not a regular file",
    }
    assert "decompression bomb" in why["bomb.png"]
    assert not any("inside.png" in f for f in index.files)          # nothing read below the class folders


def test_a_folder_without_subfolders_is_unlabelled(tmp_path):
    for i in range(3):
        solid(tmp_path / f"p{i}.png", RED)
    (tmp_path / ".hidden.png").write_text("ignored: a hidden name")
    index = index_folder(tmp_path)
    assert index.classes is None and index.labels is None and len(index) == 3 and index.skipped == []


def test_indexing_reads_headers_only(tmp_path, monkeypatch):
    for i in range(300):
        solid(tmp_path / f"p{i:04d}.png", RED, size=(8, 8))

    def no_decoding(self):
        raise AssertionError("indexing decoded a picture's pixels")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    t0 = time.perf_counter()
    index = index_folder(tmp_path)
    assert len(index) == 300 and time.perf_counter() - t0 < 5.0
    assert check_file(tmp_path / "p0000.png") is None


def test_a_missing_folder_or_a_file_is_one_sentence(tmp_path):
    from models.images import FolderError

    with pytest.raises(FolderError, match="there is no folder"):
        index_folder(tmp_path / "nowhere")
    solid(tmp_path / "one.png", RED)
    with pytest.raises(FolderError, match="is a file, not a folder"):
        index_folder(tmp_path / "one.png")
