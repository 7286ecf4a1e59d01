"""Wheels that travel with the code to a machine without network (the GPU machine of ``bench/gpu_check.sh``).

That machine has torch, torchvision, timm, scikit-image and pyarrow, but not what ``selfsup`` and
``masking`` import at import time: ``pydantic`` (``selfsup.config``), ``kornia`` (device views),
``lightly`` (method heads and losses, the plain lightly loop), nor ``segment-anything-hq`` (HQ-SAM)
and ``pytest`` (the CUDA tests). Ray and MLflow are not needed: the GPU checks run without them.
(``lightly.utils.benchmarking``, which pulls pytorch_lightning, torchmetrics and matplotlib, is
imported only where KNN runs, so training alone does not need those.)

    python bench/carried_wheels.py download bench/wheels     # here, with PyPI: ~33 MB, the versions installed here
    python bench/carried_wheels.py install bench/wheels DIR  # there: unpack what is missing or older into DIR

``install`` unpacks a wheel only when its distribution is missing or older on that machine (so the
machine's own torch stack is never shadowed) and only the build for that Python; prepend DIR to
``PYTHONPATH``. Compiled wheels (pydantic-core, kornia-rs) are fetched for CPython 3.10-3.13 on
x86-64 Linux, since the GPU machine's Python is not known in advance.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import re
import subprocess
import sys
import zipfile
from pathlib import Path

PURE = ("lightly", "lightning-utilities", "kornia", "pydantic", "annotated-types", "typing-inspection",
        "typing-extensions", "segment-anything-hq", "pytest", "iniconfig", "pluggy", "pygments")
COMPILED = ("pydantic-core", "kornia-rs")
PYTHONS = ("310", "311", "312", "313")


def _pins(names: tuple[str, ...]) -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in names]


def download(folder: Path) -> None:
    """The wheels of the versions installed in this environment, into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(folder)]
    subprocess.run([*pip, *_pins(PURE)], check=True)
    for python in PYTHONS:
        platforms = [a for p in ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64") for a in ("--platform", p)]
        subprocess.run([*pip, *platforms, "--python-version", python, "--implementation", "cp", *_pins(COMPILED)], check=True)
    total = sum(f.stat().st_size for f in folder.glob("*.whl"))
    print(f"{len(list(folder.glob('*.whl')))} wheels, {total / 2**20:.1f} MiB in {folder}")


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.+-]", version)[:4])


def fits_here(wheel: str) -> bool:
    """A wheel's tags (name-version-python-abi-platform.whl) accept this interpreter (pure, or this CPython on Linux x86-64)."""
    python, abi, platform = wheel[:-4].split("-")[-3:]
    if abi == "none" and platform == "any":
        return True
    here = f"cp{sys.version_info.major}{sys.version_info.minor}"
    return here in python.split(".") and "x86_64" in platform and sys.platform == "linux"


def install(folder: Path, target: Path) -> list[str]:
    """Unpack into ``target`` each wheel in ``folder`` whose distribution is missing or older here; one line per wheel."""
    target.mkdir(parents=True, exist_ok=True)
    lines = []
    for wheel in sorted(folder.glob("*.whl")):
        name, version = wheel.name.split("-")[:2]
        if not fits_here(wheel.name):
            continue
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        if have is not None and _version_key(have) >= _version_key(version):
            lines.append(f"present  {name} {have} (carried {version})")
            continue
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(target)
        lines.append(f"unpacked {name} {version}" + (f" (here: {have})" if have else " (missing here)"))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    down = sub.add_parser("download")
    down.add_argument("folder", type=Path)
    up = sub.add_parser("install")
    up.add_argument("folder", type=Path)
    up.add_argument("target", type=Path)
    args = parser.parse_args()
    if args.command == "download":
        download(args.folder)
        return
    if not args.folder.is_dir():
        print(f"carried wheels: no folder {args.folder} (fill it with: python bench/carried_wheels.py download {args.folder})")
        return
    for line in install(args.folder, args.target):
        print(line)


if __name__ == "__main__":
    main()
