"""The pieces of bench/gpu_check.sh that decide what runs on the GPU machine: carried wheels and the table."""

import json
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import carried_wheels  # noqa: E402
import gpu_table  # noqa: E402


def fake_wheel(folder: Path, name: str, version: str, tags: str = "py3-none-any") -> Path:
    path = folder / f"{name}-{version}-{tags}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}/__init__.py", f"VERSION = {version!r}\n")
        archive.writestr(f"{name}-{version}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return path


def test_only_missing_or_older_distributions_for_this_python_are_unpacked(tmp_path):
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    wheels.mkdir()
    fake_wheel(wheels, "s3same_not_installed_pkg", "1.0")
    fake_wheel(wheels, "pytest", "0.1")  # installed here in a newer version: keep the machine's
    fake_wheel(wheels, "pluggy", "999.0")  # newer than the machine's: carried
    fake_wheel(wheels, "s3same_other_python", "1.0", "cp27-cp27mu-manylinux1_x86_64")
    lines = carried_wheels.install(wheels, target)
    assert (target / "s3same_not_installed_pkg" / "__init__.py").exists()
    assert (target / "pluggy" / "__init__.py").exists()
    assert not (target / "pytest").exists() and not (target / "s3same_other_python").exists()
    assert any(line.startswith("present  pytest") for line in lines)
    assert any(line.startswith("unpacked pluggy 999.0 (here:") for line in lines)
    assert not any("s3same_other_python" in line for line in lines)


def test_wheel_tags_accept_this_interpreter_only():
    here = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert carried_wheels.fits_here("kornia-0.9.0-py3-none-any.whl")
    assert carried_wheels.fits_here(f"pydantic_core-2.0-{here}-{here}-manylinux2014_x86_64.manylinux_2_17_x86_64.whl")
    assert not carried_wheels.fits_here("pydantic_core-2.0-cp27-cp27-manylinux2014_x86_64.whl")
    assert not carried_wheels.fits_here(f"pydantic_core-2.0-{here}-{here}-macosx_11_0_arm64.whl")


def test_table_shows_each_steps_figures_and_names_a_failed_step(tmp_path, capsys, monkeypatch):
    (tmp_path / "preflight.log").write_text("python 3.11, torch 2.x, cuda 13.0, device NVIDIA H200\nimports: all present\n")
    (tmp_path / "train.json").write_text(json.dumps({
        "setup": {"device": "NVIDIA H200", "batch": 256, "size": 128, "scenes": 2048, "workers": 14, "precision": "bf16 autocast"},
        "training": [{"row": "ours simclr", "images_per_s": 612.5}, {"row": "ours simclr gpu-input", "images_per_s": 9876.5, "cache_build_s": 1.5}],
        "ratios": {"simclr gpu-input / cpu input": 16.125}, "input_alone": {"simclr gpu input, device views": 50000.0}}))
    (tmp_path / "train.rc").write_text("0 120\n")
    (tmp_path / "packing.rc").write_text("124 100\n")
    (tmp_path / "packing.log").write_text("starting\nstill training\n")
    (tmp_path / "masks.rc").write_text("0 80\n")
    (tmp_path / "masks.log").write_text("HQ-SAM vit_h on NVIDIA H200\n  reference loop: 0.5 images/s\n")
    (tmp_path / "tests.rc").write_text("0 50\n")
    (tmp_path / "tests.log").write_text("....\n==== 7 passed in 40.1s ====\n")
    monkeypatch.setattr(sys, "argv", ["gpu_table.py", str(tmp_path), "--seconds", "400"])
    gpu_table.main()
    table = capsys.readouterr().out
    assert table.startswith("## gpu_check: python 3.11, torch 2.x, cuda 13.0, device NVIDIA H200, 400 s in all")
    assert "| ours simclr gpu-input | 9876.5 | 1.5 |" in table and "| simclr gpu-input / cpu input | 16.125x |" in table
    assert "packing FAILED (100 s)" in table and "**packing: ran out of its time limit after 100 s**" in table
    assert "still training" in table
    assert "reference loop: 0.5 images/s" in table and "7 passed in 40.1s" in table
