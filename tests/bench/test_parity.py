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
    assert "Command: `python bench/parity.py --quick" in text and "settings: image_size=" in text
    rows = [line for line in text.splitlines() if line.startswith(("| simclr |", "| moco |"))]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 7
        for cell in cells[1:]:
            assert re.match(r"^[+-]?\d+\.\d\d", cell), row


def test_our_side_is_the_lightly_preset_with_blur_off_and_the_one_change_asked_for():
    settings = parity.Settings(ours=(("views_in_one_batch", True),))
    cfg = parity.our_config("simclr", settings, seed=2)
    assert (cfg.method, cfg.preset, cfg.seed, cfg.epochs, cfg.batch_size, cfg.image_size) == ("simclr", "lightly", 2, settings.epochs, settings.batch_size, settings.image_size)
    s = cfg.settings()
    assert (s.blur_prob, s.cj_strength, s.temperature, s.views_in_one_batch) == (0.0, 0.5, 0.5, True)
    moco = parity.our_config("moco", parity.Settings(), seed=0).settings()
    assert (moco.temperature, moco.queue_size, moco.ema_schedule, moco.views_in_one_batch if hasattr(moco, "views_in_one_batch") else None) == (0.1, 4096, "constant", None)
