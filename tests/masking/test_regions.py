import numpy as np
import pytest

from masking.regions import coarsest, enlarge_boxes, mask_boxes, select_regions


def rect(h, w, x0, y0, x1, y1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_nested_mask_is_dropped_and_separate_masks_kept():
    big = rect(100, 100, 10, 10, 60, 60)  # 2500 px
    inside = rect(100, 100, 20, 20, 40, 40)  # fully inside big
    apart = rect(100, 100, 70, 70, 100, 100)  # 900 px, elsewhere
    regions = select_regions(np.stack([inside, big, apart]), np.array([0.1, 0.2, 0.3]), min_area=500)
    assert regions.boxes.tolist() == [[10, 10, 60, 60], [70, 70, 100, 100]]
    assert regions.areas.tolist() == [2500, 900]
    assert regions.scores.tolist() == pytest.approx([0.2, 0.3])


def test_containment_threshold_is_respected():
    big = rect(50, 100, 0, 0, 50, 50)  # 2500 px
    mostly = rect(50, 100, 5, 0, 55, 10)  # 500 px, 450 inside big: 90 % exactly -> kept (not more than)
    more = rect(50, 100, 4, 20, 54, 30)  # 500 px, 460 inside: 92 % -> dropped
    half = rect(50, 100, 25, 40, 75, 50)  # 500 px, 250 inside -> kept
    kept = coarsest(np.stack([big, mostly, more, half]), containment=0.9)
    assert sorted(kept.tolist()) == [0, 1, 3]
    assert coarsest(np.stack([big, mostly]), containment=0.8).tolist() == [0]


def test_min_area_drops_small_regions_before_containment():
    small = rect(64, 64, 0, 0, 10, 10)  # 100 px
    medium = rect(64, 64, 20, 20, 60, 60)  # 1600 px
    assert select_regions(np.stack([small, medium]), min_area=1000).boxes.tolist() == [[20, 20, 60, 60]]
    assert len(select_regions(np.stack([small]), min_area=1000)) == 0
    assert len(select_regions(np.zeros((0, 8, 8), bool))) == 0


def test_mask_boxes_are_tight_with_exclusive_ends():
    m = np.zeros((1, 20, 30), bool)
    m[0, 3, 5] = m[0, 10, 12] = True
    assert mask_boxes(m).tolist() == [[5, 3, 13, 11]]


def test_enlarge_scales_around_centre_and_clips():
    out = enlarge_boxes(np.array([[10, 10, 20, 30]]), 1.3, 100, 100)
    assert out[0].tolist() == pytest.approx([8.5, 7.0, 21.5, 33.0])
    edge = enlarge_boxes(np.array([[0, 90, 10, 100]]), 2.0, 100, 100)
    assert edge[0].tolist() == pytest.approx([0, 85, 15, 100])
    assert enlarge_boxes(np.array([[1, 2, 3, 4]]), 1.0, 10, 10)[0].tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="c must be >= 1"):
        enlarge_boxes(np.array([[1, 2, 3, 4]]), 0.9, 10, 10)
