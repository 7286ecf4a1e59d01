"""Every pretraining image decoded and resized once, kept in memory as uint8 (``input: gpu``).

Decoding and resizing a photo is most of the CPU cost of a training view (``bench/train_step.py``);
the cache pays it once per run, when the run starts. Each image is resized with PIL's antialiased
bicubic filter so that its short side is ``short_side`` px (an image already smaller is kept as it
is, never upscaled) and stored channels-first (3, h, w).

All images lie one after another in **one flat uint8 array** (``pixels``, with each image's
``offsets`` and ``shapes``): built in parallel straight into place (a header pass finds every
size, then threads decode into their slices; PIL releases the GIL while decoding and resizing),
moved to the training device in one copy (``DeviceImages``), where a batch is gathered with one
indexing operation, so DataLoader workers never ship pixels. One array is also one buffer to share
between processes: a sweep builds each cache once and hands it to the trials packed on a node
through Ray's object store (``orchestrator.shared_caches``), where they read it in place, read-only.
A cache knows what it was built from (``root``, ``listed``: a fingerprint of the requested path
list, ``short_side``), so a run given one can check it is the cache it would have built
(``ImageCache.mismatch``).

Memory is 3 bytes per cached pixel: ImageNette (9,469 photos, about 4:3) at a short side of 192 px
takes ~1.4 GB, ADE20K (20,210) ~3 GB, Cityscapes (2,975 frames, 2:1) ~0.7 GB.

Region boxes in a region store are in original-image pixels; ``to_cache`` rescales them.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from samdata.image_files import DECODE_ERRORS, load_rgb

TRANSPOSED = (5, 6, 7, 8)  # EXIF orientations that swap width and height (ImageOps.exif_transpose)


def cached_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) of an image once cached: short side ``short_side``, aspect kept, never larger."""
    short = min(width, height)
    if short <= short_side:
        return width, height
    scale = short_side / short
    return max(1, round(width * scale)), max(1, round(height * scale))


def upright_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image as ``load_rgb`` returns it (EXIF orientation applied), from its header alone."""
    with Image.open(path) as image:
        width, height = image.size
        if image.getexif().get(0x0112) in TRANSPOSED:
            return height, width
        return width, height


def decode_resized(path: str | Path, short_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """One image as a (3, h, w) uint8 array at its cached size, and its original (width, height)."""
    image = load_rgb(path)
    size = cached_size(image.width, image.height, short_side)
    original = (image.width, image.height)
    if size != original:
        image = image.resize(size, Image.BICUBIC)
    return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1)), original


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class ImageCache:
    """Image ``i`` (``paths[i]``): ``pixels[offsets[i] : offsets[i] + 3 * h * w]`` as (3, h, w) uint8,
    (h, w) = ``shapes[i]``; ``original_sizes[i]``: its (width, height) in the file, the coordinates
    of its region boxes."""

    paths: list[str]
    pixels: np.ndarray
    offsets: np.ndarray
    shapes: np.ndarray
    original_sizes: list[tuple[int, int]]
    short_side: int
    root: str | None = None
    """The image folder ``build`` read (None for ``from_arrays``)."""
    listed: str | None = None
    """``listing(paths)`` of the paths ``build`` was asked for (before unreadable ones were left out)."""

    @staticmethod
    def listing(paths: Sequence[str]) -> str:
        """A fingerprint of a requested path list (order and repeats count)."""
        return hashlib.sha256(json.dumps(list(paths)).encode()).hexdigest()

    def mismatch(self, root: str | Path, paths: Sequence[str], short_side: int) -> str | None:
        """Why this cache is not what ``build(root, paths, short_side)`` would make, or None when it is."""
        if self.short_side != short_side:
            return f"its short side is {self.short_side} px, this run needs {short_side} px"
        if self.root != str(Path(root)):
            return f"it was built from {self.root}, this run reads {root}"
        if self.listed != self.listing(paths):
            return f"it was built from another list of images than this run's {len(paths)}"
        return None

    @classmethod
    def from_arrays(cls, paths: Sequence[str], images: Sequence[np.ndarray], original_sizes: Sequence[tuple[int, int]],
                    short_side: int) -> ImageCache:
        """A cache of (3, h, w) uint8 arrays already made."""
        shapes = np.array([image.shape[1:] for image in images], np.int64).reshape(-1, 2)
        lengths = 3 * shapes.prod(1)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        pixels = np.concatenate([np.asarray(image, np.uint8).ravel() for image in images]) if images else np.zeros(0, np.uint8)
        return cls(list(paths), pixels, offsets, shapes, list(original_sizes), short_side)

    @classmethod
    def build(cls, root: str | Path, paths: Sequence[str], short_side: int, threads: int | None = None) -> ImageCache:
        """Decode and resize every image into one flat array, in ``threads`` threads (default: every
        core this process may use; the cache is built before any DataLoader worker starts). A path
        listed several times is decoded once, its entries sharing one slice.

        An unreadable image is left out with a warning, as the CPU path skips it."""
        root = Path(root)
        threads = max(1, threads or available_cores())
        unique = list(dict.fromkeys(paths))

        def header(rel: str):
            try:
                return upright_size(root / rel)
            except DECODE_ERRORS as err:
                return err

        with ThreadPoolExecutor(threads) as pool:
            sizes = list(pool.map(header, unique))
        errors: dict[str, Exception] = {rel: s for rel, s in zip(unique, sizes) if isinstance(s, Exception)}
        kept = [(rel, s) for rel, s in zip(unique, sizes) if not isinstance(s, Exception)]
        shapes = np.array([cached_size(w, h, short_side)[::-1] for _, (w, h) in kept], np.int64).reshape(-1, 2)
        lengths = 3 * shapes.prod(1)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        pixels = np.empty(int(lengths.sum()), np.uint8)

        def decode(i: int):
            rel = kept[i][0]
            try:
                image, original = decode_resized(root / rel, short_side)
            except DECODE_ERRORS as err:
                return err
            if image.shape[1:] != tuple(shapes[i]):
                return ValueError(f"decoded as {image.shape[1:]}, its header says {tuple(shapes[i])}")
            pixels[offsets[i] : offsets[i] + lengths[i]] = image.ravel()
            return original

        with ThreadPoolExecutor(threads) as pool:
            originals = list(pool.map(decode, range(len(kept))))
        errors.update({kept[i][0]: o for i, o in enumerate(originals) if isinstance(o, Exception)})
        if errors:
            rel, err = next(iter(errors.items()))
            warnings.warn(f"skipping {len(errors)} unreadable image(s) under {root}, e.g. {rel}: {err}", stacklevel=2)
        slot = {rel: i for i, (rel, _) in enumerate(kept) if not isinstance(originals[i], Exception)}
        entries = [slot[rel] for rel in paths if rel in slot]
        if not entries:
            raise RuntimeError(f"image folder {root}: no image could be read")
        cache = cls([kept[i][0] for i in entries], pixels, offsets[entries], shapes[entries],
                    [originals[i] for i in entries], short_side)
        if len(slot) < len(kept):  # a file broken past its header left a gap: pack again (rare)
            cache = cls.from_arrays(cache.paths, cache.images, cache.original_sizes, short_side)
        return replace(cache, root=str(root), listed=cls.listing(paths))

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, index: int) -> np.ndarray:
        """Image ``index`` as a (3, h, w) view into ``pixels``."""
        h, w = self.shapes[index]
        start = self.offsets[index]
        return self.pixels[start : start + 3 * h * w].reshape(3, h, w)

    @property
    def images(self) -> list[np.ndarray]:
        return [self.image(i) for i in range(len(self))]

    @property
    def nbytes(self) -> int:
        return self.pixels.nbytes

    def to_cache(self, index: int, boxes: np.ndarray) -> np.ndarray:
        """Boxes (K, 4) in the original image's pixels as float boxes in the cached image's pixels."""
        width, height = self.original_sizes[index]
        h, w = self.shapes[index]
        scale = np.array([w / width, h / height, w / width, h / height])
        return np.asarray(boxes, np.float64).reshape(-1, 4) * scale


def gather_padded(pixels: torch.Tensor, offsets: torch.Tensor, shapes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Images at ``offsets`` with ``shapes`` (B, 2) (h, w) in the flat ``pixels``, zero-padded to one
    (B, 3, height, width) uint8 tensor by one indexing operation (no per-image kernel launches)."""
    h, w = shapes.unbind(1)
    ys = torch.arange(height, device=pixels.device, dtype=h.dtype)
    xs = torch.arange(width, device=pixels.device, dtype=h.dtype)
    channels = torch.arange(3, device=pixels.device, dtype=h.dtype)
    position = (offsets[:, None, None, None] + channels[None, :, None, None] * (h * w)[:, None, None, None]
                + ys[None, None, :, None] * w[:, None, None, None] + xs[None, None, None, :])
    inside = ((ys[None, :, None] < h[:, None, None]) & (xs[None, None, :] < w[:, None, None]))[:, None]  # (B, 1, H, W)
    return pixels[torch.where(inside, position, 0)] * inside


def host_tensor(pixels: np.ndarray) -> torch.Tensor:
    """``pixels`` as a CPU tensor sharing its memory. A read-only array (a cache read from Ray's
    object store, shared by every trial on the node) is wrapped without torch's warning that writes
    through the tensor would be undefined: ``DeviceImages`` only ever reads its pixels (copies of
    them make each batch), and tests check the shared bytes are unchanged after training."""
    if pixels.flags.writeable:
        return torch.from_numpy(pixels)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)
        return torch.from_numpy(pixels)


class DeviceImages:
    """An ``ImageCache``'s pixels on the training device, copied once; ``batch(indices)`` makes a
    zero-padded (B, 3, H, W) uint8 batch, H and W the largest of the batch, known on the host (no
    device sync). On a GPU by one gather (``gather_padded``); on a CPU by a copy per image (no
    kernel launches to save there, and measured faster than the gather's index arithmetic)."""

    def __init__(self, cache: ImageCache, device: torch.device):
        self.device = torch.device(device)
        self.pixels = host_tensor(cache.pixels).to(self.device)
        self.host_shapes = torch.from_numpy(cache.shapes)
        self.host_offsets = torch.from_numpy(cache.offsets)
        # positions of the gather: int32 while the cache is under 2 GiB (half the index traffic), else int64
        dtype = torch.int32 if cache.pixels.size < 2**31 else torch.int64
        self.offsets = self.host_offsets.to(self.device, dtype)
        self.shapes = self.host_shapes.to(self.device, dtype)

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (B, 3, H, W) uint8 zero-padded at the bottom and right, their (height, width) (B, 2)), on the device."""
        shapes = self.host_shapes[indices]
        height, width = (int(v) for v in shapes.amax(0))
        if self.device.type == "cpu":
            images = torch.zeros((len(indices), 3, height, width), dtype=torch.uint8)
            for row, start, (h, w) in zip(images, self.host_offsets[indices].tolist(), shapes.tolist()):
                row[:, :h, :w] = self.pixels[start : start + 3 * h * w].view(3, h, w)
            return images, shapes
        index = indices.to(self.device, non_blocking=True)
        return gather_padded(self.pixels, self.offsets[index], self.shapes[index], height, width), self.shapes[index].long()
