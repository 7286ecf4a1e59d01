import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from masking.crops import CropSampler, CropSpec, resized_crop, sample_crop
from masking.regions import enlarge_boxes


def test_region_crop_boxes_lie_inside_the_enlarged_box():
    torch.manual_seed(0)
    boxes = np.array([[10, 20, 40, 35], [60, 5, 90, 70]])
    enlarged = enlarge_boxes(boxes, 1.3, 100, 80)
    sampler = CropSampler((CropSpec(2, 32), CropSpec(4, 16, scale=(0.05, 0.4))), "regions", c=1.3)
    hits = set()
    for _ in range(400):
        crops = np.array(sampler.crop_boxes(100, 80, boxes))
        assert crops.shape == (6, 4)
        inside = [
            k for k, e in enumerate(enlarged)
            if (crops[:, 0] >= e[0] - 1e-9).all() and (crops[:, 1] >= e[1] - 1e-9).all()
            and (crops[:, 2] <= e[2] + 1e-9).all() and (crops[:, 3] <= e[3] + 1e-9).all()
        ]
        assert inside, "all views of one draw must share one enlarged region"
        hits.update(inside)
    assert hits == {0, 1}


def test_region_crops_show_only_the_region_pixels():
    """A red and a green square on black: every resized crop of a draw is all red or all green."""
    torch.manual_seed(1)
    img = np.zeros((120, 160, 3), np.uint8)
    img[10:60, 10:60] = (255, 0, 0)
    img[50:110, 90:150] = (0, 255, 0)
    boxes = np.array([[10, 10, 60, 60], [90, 50, 150, 110]])
    image = Image.fromarray(img)
    sampler = CropSampler((CropSpec(2, 24),), "regions", c=1.0)
    colours = []
    for _ in range(100):
        boxes_of_views = sampler.crop_boxes(image.width, image.height, boxes)
        crops = [np.asarray(resized_crop(image, box, 24)) for box in boxes_of_views]
        assert all(crop.shape == (24, 24, 3) for crop in crops)
        means = [crop.reshape(-1, 3).mean(0) / 255 for crop in crops]
        channel = {int(m.argmax()) for m in means}
        assert len(channel) == 1 and all(m.max() > 0.95 for m in means)
        colours.append(channel.pop())
    assert 30 < colours.count(0) < 70  # the region is picked uniformly


def test_no_region_falls_back_to_the_whole_image():
    torch.manual_seed(0)
    sampler = CropSampler((CropSpec(2, 16),), "regions", c=1.3)
    crops = np.array([sampler.crop_boxes(50, 40, np.zeros((0, 4))) for _ in range(300)]).reshape(-1, 4)
    assert crops[:, :2].min() >= 0 and crops[:, 2].max() <= 50 and crops[:, 3].max() <= 40
    assert crops[:, 2].max() > 45 and crops[:, 0].min() < 5  # crops reach the whole image


def test_crop_law_matches_torchvision_random_resized_crop():
    torch.manual_seed(0)
    ours = np.array([sample_crop((0, 0, 200, 100), (0.08, 1.0), (3 / 4, 4 / 3)) for _ in range(4000)])
    ours_area = (ours[:, 2] - ours[:, 0]) * (ours[:, 3] - ours[:, 1]) / 20000
    img = Image.new("RGB", (200, 100))
    tv = np.array([T.RandomResizedCrop.get_params(img, (0.08, 1.0), (3 / 4, 4 / 3)) for _ in range(4000)])
    tv_area = tv[:, 2] * tv[:, 3] / 20000
    assert abs(ours_area.mean() - tv_area.mean()) < 0.02
    assert abs(np.median(ours_area) - np.median(tv_area)) < 0.03
    ours_ratio = (ours[:, 2] - ours[:, 0]) / (ours[:, 3] - ours[:, 1])
    assert ours_ratio.min() >= 3 / 4 - 1e-6 and ours_ratio.max() <= 4 / 3 + 1e-6


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="unknown sampling"):
        CropSampler(sampling="mask")
    with pytest.raises(ValueError, match="c must be >= 1"):
        CropSampler(sampling="regions", c=0.5)
