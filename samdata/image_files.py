"""Image files: which files of a folder are images, how one is decoded, and what a broken one raises.

One definition for every reader: the pretraining folders (``selfsup``), the region precompute and its
readability check (``orchestrator``), the previews (``masking.preview``) and the dataset checks
(``samdata``'s official layouts). A file or folder whose name starts with a dot is never an image:
``samdata.storage`` writes every file under a hidden temporary name first, so a half-written file
is never listed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")
"""The suffixes PIL decodes that datasets use (compared case-insensitively)."""

DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
"""What PIL raises for a broken or hostile file: truncated (OSError), not an image (UnidentifiedImageError,
an OSError), a corrupt header (ValueError, SyntaxError), a decompression bomb."""


def list_images(root: str | Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[str]:
    """Relative POSIX paths (sorted) of the files under ``root`` whose name ends with one of ``suffixes``
    (case-insensitively; a suffix may be longer than an extension, e.g. ``_leftimg8bit.png``), hidden
    files and folders left out. A missing folder is a ``FileNotFoundError`` naming it."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    suffixes = tuple(s.lower() for s in suffixes)
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = Path(folder).relative_to(root)
        out += [(rel / f).as_posix() for f in files if f.lower().endswith(suffixes) and not f.startswith(".")]
    return sorted(out)


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image as 8-bit RGB with its EXIF orientation applied (16-bit grey scaled to 8 bits);
    a broken file raises one of ``DECODE_ERRORS``."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grayscale PNG: 0..65535 -> 0..255
            arr = np.rint(np.asarray(img, dtype=np.float64) / 257.0).clip(0, 255)
            return Image.fromarray(arr.astype(np.uint8)).convert("RGB")
        return img.convert("RGB")
