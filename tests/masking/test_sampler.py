import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from lightly.transforms import SimCLRTransform
from PIL import Image

from masking.regions import enlarge_boxes
from masking.sampler import CropSpec, Photometric, ViewSampler, sample_crop
from masking.views import byol_views, dino_views, simclr_views, swav_views


def test_region_crop_boxes_lie_inside_the_enlarged_box():
    torch.manual_seed(0)
    boxes = np.array([[10, 20, 40, 35], [60, 5, 90, 70]])
    enlarged = enlarge_boxes(boxes, 1.3, 100, 80)
    sampler = ViewSampler((CropSpec(2, 32), CropSpec(4, 16, scale=(0.05, 0.4))), "regions", c=1.3)
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


def test_region_views_show_only_the_region_pixels():
    """A red and a green square on black: every view of a draw is all red or all green."""
    torch.manual_seed(1)
    img = np.zeros((120, 160, 3), np.uint8)
    img[10:60, 10:60] = (255, 0, 0)
    img[50:110, 90:150] = (0, 255, 0)
    boxes = np.array([[10, 10, 60, 60], [90, 50, 150, 110]])
    sampler = ViewSampler((CropSpec(2, 24),), "regions", c=1.0, photometric=T.ToTensor())
    colours = []
    for _ in range(100):
        views = sampler(Image.fromarray(img), boxes)
        means = [v.mean(dim=(1, 2)) for v in views]
        channel = {int(m.argmax()) for m in means}
        assert len(channel) == 1 and all(m.max() > 0.95 for m in means)
        colours.append(channel.pop())
    assert 30 < colours.count(0) < 70  # the region is picked uniformly


def test_no_region_falls_back_to_the_whole_image():
    torch.manual_seed(0)
    sampler = ViewSampler((CropSpec(2, 16),), "regions", c=1.3)
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


def test_random_views_match_lightly_simclr_transform_in_distribution():
    """Same image through our `random` sampler and lightly's SimCLRTransform: same statistics."""
    from skimage.data import astronaut

    img = Image.fromarray(astronaut()).resize((128, 128))
    torch.manual_seed(0)
    np.random.seed(0)
    ours = ViewSampler((CropSpec(2, 32),), "random")
    lightly = SimCLRTransform(input_size=32)
    a = torch.stack([v for _ in range(300) for v in ours(img, None)])
    b = torch.stack([v for _ in range(300) for v in lightly(img)])
    assert a.shape == b.shape == (600, 3, 32, 32)
    for stat in (lambda x: x.mean(dim=(2, 3)), lambda x: x.std(dim=(2, 3))):
        sa, sb = stat(a), stat(b)
        assert torch.allclose(sa.mean(0), sb.mean(0), atol=0.12), (sa.mean(0), sb.mean(0))
        assert torch.allclose(sa.std(0), sb.std(0), rtol=0.25, atol=0.05), (sa.std(0), sb.std(0))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="unknown sampling"):
        ViewSampler(sampling="mask")
    with pytest.raises(ValueError, match="c must be >= 1"):
        ViewSampler(sampling="regions", c=0.5)


# Per-crop augmentations (CropSpec.photometric) and the methods' views (masking.views)

OFF = {"cj_prob": 0.0, "gray_prob": 0.0, "blur_prob": 0.0, "normalize": False}
WHOLE = {"scale": (1.0, 1.0), "ratio": (1.0, 1.0)}  # a square image's crop is the image itself


def constant(rgb, size=16) -> Image.Image:
    return Image.fromarray(np.full((size, size, 3), rgb, np.uint8))


def checkerboard(size=16, square=2) -> Image.Image:
    cells = (np.indices((size, size)) // square).sum(0) % 2
    return Image.fromarray(np.repeat(cells[..., None] * 255, 3, -1).astype(np.uint8))


def draw(sampler, image, draws):
    """(draws, views, 3, h, w): ``draws`` calls of ``sampler`` on ``image`` (views of one size)."""
    views = [sampler(image) for _ in range(draws)]
    return torch.stack([torch.stack(v) for v in views])


def within_binomial(hits: int, n: int, p: float) -> bool:
    return abs(hits / n - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1e-12


def test_solarisation_inverts_views_with_its_probability():
    """Constant 200: a solarised view is 55 everywhere, the others stay 200; the fraction ~ p."""
    torch.manual_seed(0)
    for prob in (0.0, 0.3):
        spec = CropSpec(4, 8, **WHOLE, photometric=Photometric(**OFF, solarize_prob=prob))
        views = draw(ViewSampler((spec,)), constant(200, 8), 200) * 255
        inverted = (views - 55).abs().amax((2, 3, 4)) < 1e-3
        kept = (views - 200).abs().amax((2, 3, 4)) < 1e-3
        assert (inverted ^ kept).all()
        assert within_binomial(int(inverted.sum()), inverted.numel(), prob), (prob, inverted.float().mean())


def test_solarisation_threshold_and_position_are_lightlys():
    """PIL inverts values >= 128 (128 -> 127, 127 stays); lightly solarises after the grayscale:
    (200, 100, 50) grays to 124, below the threshold (solarising first would give 81)."""
    torch.manual_seed(0)
    always = Photometric(**OFF, solarize_prob=1.0)
    for value, expected in ((128, 127), (127, 127), (255, 0), (0, 0)):
        views = draw(ViewSampler((CropSpec(2, 8, **WHOLE, photometric=always),)), constant(value, 8), 3)
        assert torch.equal(views * 255, torch.full_like(views, expected)), value
    gray_first = replace(always, gray_prob=1.0)
    views = draw(ViewSampler((CropSpec(2, 8, **WHOLE, photometric=gray_first),)), constant((200, 100, 50), 8), 3)
    assert torch.equal(views * 255, torch.full_like(views, 124))


def blurred(views: torch.Tensor) -> torch.Tensor:
    """Per view: True when a checkerboard's black/white edges are gone (blur with sigma >= 1)."""
    return (views[..., 1:] - views[..., :-1]).abs().amax((-3, -2, -1)) < 0.6


def test_each_spec_gets_its_own_blur_probability():
    """DINO's blur: global view 1 always, global view 2 ~10 %, locals ~50 %; a spec without its own
    settings gets the sampler's (here: never blurred)."""
    torch.manual_seed(0)
    settings = {**OFF, "sigmas": (1.0, 2.0)}
    specs = tuple(
        CropSpec(n, 16, **WHOLE, photometric=None if p is None else Photometric(**{**settings, "blur_prob": p}))
        for n, p in ((1, 1.0), (1, 0.1), (2, 0.5), (1, None))
    )
    sampler = ViewSampler(specs, photometric=Photometric(**settings).compose())
    views = draw(sampler, checkerboard(), 300)
    hit = blurred(views)  # (draws, views)
    assert hit[:, 0].all()
    assert within_binomial(int(hit[:, 1].sum()), 300, 0.1), hit[:, 1].float().mean()
    assert within_binomial(int(hit[:, 2:4].sum()), 600, 0.5), hit[:, 2:4].float().mean()
    assert not hit[:, 4].any()


def jitter_factors(views: torch.Tensor, rgb) -> tuple[torch.Tensor, torch.Tensor]:
    """Brightness and saturation factors of jittered views of a constant colour (no clipping):
    brightness scales the luma, saturation (which keeps the luma) scales R - G about it."""
    luma = torch.tensor([0.299, 0.587, 0.114])
    colour = torch.tensor(rgb, dtype=torch.float64) / 255
    mean = views.double().mean((-2, -1))  # (..., 3)
    brightness = (mean * luma).sum(-1) / (colour * luma.double()).sum()
    saturation = (mean[..., 0] - mean[..., 1]) / (brightness * (colour[0] - colour[1]))
    return brightness.flatten(), saturation.flatten()


def test_jitter_ranges_are_per_channel():
    """cj_bright 0.8 and cj_sat 0.2 (DINO-like): brightness factors span [0.2, 1.8], saturation
    factors only [0.8, 1.2] (with SimCLR's cj_sat 0.8 they would span [0.2, 1.8] too)."""
    torch.manual_seed(0)
    rgb = (100, 60, 60)
    p = Photometric(**{**OFF, "cj_prob": 1.0}, cj_bright=0.8, cj_contrast=0.0, cj_sat=0.2, cj_hue=0.0)
    views = draw(ViewSampler((CropSpec(4, 8, **WHOLE, photometric=p),)), constant(rgb, 8), 250)
    brightness, saturation = jitter_factors(views, rgb)
    assert brightness.min() < 0.3 and brightness.max() > 1.7
    saturation = saturation[brightness > 0.8]  # R - G >= 32 levels: quantisation below 3 %
    assert 0.75 < saturation.min() < 0.85 and 1.15 < saturation.max() < 1.25, (saturation.min(), saturation.max())


def lightly_settings(view) -> dict:
    """Crop size and scale and the photometric settings of one lightly view transform."""
    from lightly.transforms.gaussian_blur import GaussianBlur
    from lightly.transforms.solarize import RandomSolarization
    from lightly.transforms.torchvision_v2_compatibility import torchvision_transforms as LT

    found = {"solarize_prob": 0.0}

    def walk(t):
        if isinstance(t, LT.RandomResizedCrop):
            found.update(size=t.size[0], scale=tuple(t.scale))
        elif isinstance(t, LT.RandomApply) and isinstance(t.transforms[0], LT.ColorJitter):
            j = t.transforms[0]
            found.update(cj_prob=t.p, jitter=(j.brightness[1] - 1, j.contrast[1] - 1, j.saturation[1] - 1, j.hue[1]))
        elif isinstance(t, LT.RandomGrayscale):
            found["gray_prob"] = t.p
        elif isinstance(t, LT.RandomHorizontalFlip):
            found["hflip_prob"] = t.p
        elif isinstance(t, GaussianBlur):
            found.update(blur_prob=t.prob, sigmas=tuple(t.sigmas))
        elif isinstance(t, RandomSolarization):
            found["solarize_prob"] = t.prob
        for child in getattr(t, "transforms", []) or []:
            walk(child)
        if hasattr(t, "transform"):
            walk(t.transform)

    walk(view)
    return found


def our_settings(spec: CropSpec) -> dict:
    p = spec.photometric
    return {
        "size": spec.size, "scale": spec.scale, "cj_prob": p.cj_prob, "jitter": p.jitter, "gray_prob": p.gray_prob,
        "hflip_prob": p.hflip_prob, "blur_prob": p.blur_prob, "sigmas": p.sigmas, "solarize_prob": p.solarize_prob,
    }


def lightly_views():
    """Our views and lightly's transform for each method, with a few non-default arguments."""
    from lightly.transforms import BYOLTransform, BYOLView1Transform, BYOLView2Transform, DINOTransform, SwaVTransform

    byol = BYOLTransform(BYOLView1Transform(32, min_scale=0.2), BYOLView2Transform(32, min_scale=0.2))
    return {
        "simclr": (simclr_views(32, 0.2), SimCLRTransform(input_size=32, min_scale=0.2)),
        "byol": (byol_views(32, 0.2), byol),
        "dino": (dino_views(32, 16, n_local=3), DINOTransform(32, local_crop_size=16, n_local_views=3)),
        "dino strength 0.3": (dino_views(32, 16, cj_strength=0.3), DINOTransform(32, local_crop_size=16, cj_strength=0.3)),
        "swav": (swav_views((32, 16), (2, 3)), SwaVTransform(crop_sizes=(32, 16), crop_counts=(2, 3))),
    }


@pytest.mark.parametrize("method", ["simclr", "byol", "dino", "dino strength 0.3", "swav"])
def test_method_views_carry_lightlys_settings_view_by_view(method):
    specs, transform = lightly_views()[method]
    ours = [our_settings(spec) for spec in specs for _ in range(spec.n)]
    theirs = [lightly_settings(view) for view in transform.transforms]
    assert len(ours) == len(theirs)
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert a.keys() == b.keys(), k
        for key in a:
            assert np.atleast_1d(a[key]) == pytest.approx(np.atleast_1d(b[key])), (k, key, a[key], b[key])


@pytest.mark.parametrize("method", ["byol", "dino"])
def test_method_views_have_lightlys_structure(method):
    """Number of views, their sizes and their order: our sampler's output against lightly's own."""
    specs, transform = lightly_views()[method]
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    ours = ViewSampler(specs)(image)
    theirs = transform(image)
    assert [tuple(v.shape) for v in ours] == [tuple(v.shape) for v in theirs]
    assert len({tuple(v.shape) for v in ours}) == (2 if method == "dino" else 1)
