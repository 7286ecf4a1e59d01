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
