"""bench/maskers.py's choice of maskers: those that need weights run only with them."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import maskers as bench_maskers  # noqa: E402


@pytest.mark.parametrize("name, option", [("hqsam", "--hqsam-checkpoint"), ("features", "--features-checkpoint")])
def test_a_masker_that_needs_weights_is_refused_without_them(name, option):
    with pytest.raises(SystemExit, match=f"{name} needs weights: give {option}"):
        bench_maskers.choose_maskers(f"felzenszwalb,{name}", {})


def test_given_weights_add_their_masker_once():
    chosen = bench_maskers.choose_maskers("felzenszwalb,features", {"features": "ck.pt", "hqsam": "sam.pth"})
    assert chosen == ["felzenszwalb", "features", "hqsam"]
    with pytest.raises(SystemExit, match="unknown masker 'nope'"):
        bench_maskers.choose_maskers("nope", {})
