import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import parity  # noqa: E402


@pytest.mark.slow  # ~35 s on 2 cores: spawns two worker processes
def test_quick_run_writes_a_table_with_numbers(tmp_path):
    out = tmp_path / "parity.md"
    assert parity.main(["--quick", "--jobs", "2", "--methods", "simclr,moco", "--data", str(tmp_path / "data"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "Command: `python bench/parity.py --quick" in text and "Settings: image_size=" in text
    rows = [line for line in text.splitlines() if line.startswith(("| simclr |", "| moco |"))]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 7
        for cell in cells[1:]:
            assert re.match(r"^[+-]?\d+\.\d\d", cell), row


def test_our_config_is_the_one_place_for_our_settings():
    settings = parity.Settings()
    cfg = parity.our_config("moco", settings, seed=2)
    assert (cfg.method, cfg.seed, cfg.epochs, cfg.batch_size, cfg.image_size) == ("moco", 2, settings.epochs, settings.batch_size, settings.image_size)
    assert (cfg.blur_prob, cfg.cj_strength, cfg.stem, cfg.backbone_width, cfg.workers) == (0.0, 0.5, "cifar", settings.backbone_width, 0)
