"""Picture files the tests make: good colour PNGs, every odd but valid kind a reader must convert, and every bad
kind a folder may hold (tests/test_images.py and tests/test_datasets.py share them)."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

RED, BLUE = (220, 30, 30), (30, 40, 220)


def solid(path: Path, colour, size=(24, 20), mode="RGB") -> Path:
    """A picture of one colour (with a little noise, so no two are equal), saved by its suffix."""
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    pixels = np.clip(np.array(colour, float) + rng.normal(0, 6, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, width: int = 60_000, height: int = 60_000) -> Path:
    """A small PNG whose header claims width x height pixels: a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 1024)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data)
                     + png_chunk(b"IEND", b""))
    return path


def truncated_png(path: Path) -> Path:
    """A PNG of noise cut in the middle of its pixels: the header reads, the pixels do not."""
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) // 2])
    return path


def grey16_gradient(path: Path, width: int = 256, height: int = 16) -> Path:
    """A 16-bit grey PNG, black to white from left to right."""
    ramp = np.linspace(0, 65535, width).round().astype(np.uint16)
    Image.fromarray(np.tile(ramp, (height, 1))).save(path)
    assert Image.open(path).mode.startswith("I")
    return path


def cmyk_jpeg(path: Path) -> Path:
    Image.new("CMYK", (24, 24), (0, 255, 255, 0)).save(path, quality=95)      # red in CMYK
    return path


def palette_with_transparency(path: Path) -> Path:
    """A palette PNG: index 0 transparent, index 1 green; a green square in the middle."""
    img = Image.new("P", (20, 20), 0)
    img.putpalette([255, 255, 255, 0, 200, 0] + [0, 0, 0] * 254)
    img.paste(1, (5, 5, 15, 15))
    img.save(path, transparency=0)
    return path


def half_transparent_white(path: Path) -> Path:
    Image.new("RGBA", (16, 16), (255, 255, 255, 128)).save(path)
    return path


def animated_gif(path: Path) -> Path:
    """Two frames: red, then green; the first one is the picture."""
    frames = [Image.new("RGB", (16, 16), c) for c in (RED, (30, 200, 30))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def exif_rotated_jpeg(path: Path) -> Path:
    """Stored 40 wide and 20 high, red on the left and blue on the right, with EXIF orientation 6 (the camera was
    turned): shown upright it is 20 wide and 40 high, red on top."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20], pixels[:, 20:] = RED, BLUE
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    return path


def extreme_aspect(path: Path, width: int = 20_000, height: int = 2) -> Path:
    Image.new("RGB", (width, height), (200, 180, 30)).save(path)
    return path


def make_folder(root: Path, per_class: int = 24, *, with_bad: bool = True) -> dict[str, Path]:
    """A folder of colour PNGs in two labelled subfolders ('blue', 'red'), with one file of each odd kind (read)
    and, with_bad, each bad kind (skipped). Returns the notable paths by name."""
    outside = root.parent / f"{root.name}-outside"
    outside.mkdir(parents=True, exist_ok=True)
    red, blue = root / "red", root / "blue"
    red.mkdir(parents=True)
    blue.mkdir()
    for i in range(per_class):
        solid(red / f"r{i:03d}.png", RED)
        solid(blue / f"b{i:03d}.png", BLUE, size=(30, 18))
    odd = {
        "grey16": grey16_gradient(red / "grey16.png"),
        "cmyk": cmyk_jpeg(red / "cmyk.jpg"),
        "palette": palette_with_transparency(blue / "palette.png"),
        "alpha": half_transparent_white(blue / "alpha.png"),
        "animated": animated_gif(red / "animated.gif"),
        "exif": exif_rotated_jpeg(red / "exif.jpg"),
        "aspect": extreme_aspect(blue / "strip.png"),
    }
    (red / "link-to-image.png").symlink_to(solid(outside / "elsewhere.png", RED))
    odd["link"] = red / "link-to-image.png"
    if not with_bad:
        return odd
    bad = {
        "empty": red / "empty.png",
        "truncated": truncated_png(red / "truncated.png"),
        "text": red / "notes.jpg",
        "bomb": bomb_png(blue / "bomb.png"),
        "link-text": red / "link-to-text.png",
        "link-folder": blue / "link-to-folder.png",
        "link-nothing": blue / "link-to-nothing.png",
        "nested": red / "deeper",
        "beside": root / "stray.png",
        "fifo": blue / "pipe.png",
    }
    bad["empty"].write_bytes(b"")
    bad["text"].write_text("not a picture at all\n")
    (outside / "readme.txt").write_text("hello\n")
    bad["link-text"].symlink_to(outside / "readme.txt")
    bad["link-folder"].symlink_to(outside)
    bad["link-nothing"].symlink_to(outside / "gone.png")
    bad["nested"].mkdir()
    solid(bad["nested"] / "inside.png", RED)
    solid(bad["beside"], RED)
    os.mkfifo(bad["fifo"])
    return {**odd, **bad}
