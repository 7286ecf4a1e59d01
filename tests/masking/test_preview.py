import re

import pytest
from PIL import Image

from masking.preview import main
from tests.conftest import TINY_MIN_AREA


def test_preview_draws_regions_and_view_pairs(synthetic, tmp_path):
    out = tmp_path / "preview.png"
    params = f'{{"masks_root": "{synthetic.masks}"}}'
    code = main([str(synthetic.images), "--masker", "ground_truth", "--params", params, "--min-area", str(TINY_MIN_AREA),
                 "--images", "2", "--pairs", "2", "--size", "32", "--out", str(out)])
    assert code == 0
    with Image.open(out) as img:
        assert img.width > 4 * img.height / 2  # 2 rows, 1 + 4 panels each


@pytest.mark.parametrize(
    "params,expected",
    [
        ("{bad", r"--params is not JSON \(Expecting property name"),
        ("[1, 2]", r"--params must be a JSON object"),
        ('{"scales": 3}', r"unexpected keyword argument 'scales'"),
    ],
)
def test_bad_params_are_one_line(synthetic, tmp_path, capsys, params, expected):
    with pytest.raises(SystemExit) as info:
        main([str(synthetic.images), "--masker", "felzenszwalb", "--params", params, "--out", str(tmp_path / "p.png")])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert re.search(expected, err[-1]) and "Traceback" not in "".join(err)
    assert not (tmp_path / "p.png").exists()
