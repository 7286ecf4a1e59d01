"""``selfsup.views``: the CPU view maker (crop boxes of ``masking.crops``, cut, augmented) and the
methods' views against lightly's transforms."""

import math

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from lightly.transforms import SimCLRTransform
from PIL import Image

from masking.crops import CropSampler, CropSpec, resized_crop
from selfsup.augment import Photometric
from selfsup.views import ViewSampler, ViewSpec, byol_views, dino_views, simclr_views, swav_views

OFF = {"cj_prob": 0.0, "gray_prob": 0.0, "blur_prob": 0.0, "normalize": False}
WHOLE = {"scale": (1.0, 1.0), "ratio": (1.0, 1.0)}  # a square image's crop is the image itself


def checkerboard(size=16, square=2) -> Image.Image:
    cells = (np.indices((size, size)) // square).sum(0) % 2
    return Image.fromarray(np.repeat(cells[..., None] * 255, 3, -1).astype(np.uint8))


def draw(sampler, image, draws):
    """(draws, views, 3, h, w): ``draws`` calls of ``sampler`` on ``image`` (views of one size)."""
    views = [sampler(image) for _ in range(draws)]
    return torch.stack([torch.stack(v) for v in views])


def within_binomial(hits: int, n: int, p: float) -> bool:
    return abs(hits / n - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1e-12


def photo(width=64, height=48) -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_views_are_the_crop_samplers_boxes_cut_in_order():
    """With no augmentation, each view is the crop of the box ``CropSampler`` draws from the same
    seed, in the same order (what the ``input: gpu`` path relies on: its workers draw only boxes)."""
    image, regions = photo(), np.array([[5, 5, 30, 40], [20, 10, 60, 45]])
    crops = (ViewSpec(2, 16), ViewSpec(3, 8, scale=(0.05, 0.4)))
    torch.manual_seed(4)
    views = [ViewSampler(crops, "regions", 1.3, T.ToTensor())(image, regions) for _ in range(5)]
    torch.manual_seed(4)
    sampler = CropSampler(crops, "regions", 1.3)
    for drawn in views:
        boxes = sampler.crop_boxes(image.width, image.height, regions)
        sizes = [spec.size for spec in crops for _ in range(spec.n)]
        expected = [T.ToTensor()(resized_crop(image, box, size)) for box, size in zip(boxes, sizes)]
        assert len(drawn) == len(expected) == 5
        assert all(torch.equal(a, b) for a, b in zip(drawn, expected))


def test_a_plain_crop_spec_gets_the_samplers_augmentations():
    """A ``CropSpec`` (geometry only) is made like a ``ViewSpec`` without settings of its own."""
    image = photo()
    outputs = []
    for spec in (CropSpec(2, 16), ViewSpec(2, 16), ViewSpec(2, 16, photometric=Photometric(blur_prob=1.0))):
        torch.manual_seed(0)
        outputs.append(draw(ViewSampler((spec,), photometric=Photometric(**OFF).compose()), image, 4))
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.equal(outputs[1], outputs[2])


def test_random_views_match_lightly_simclr_transform_in_distribution():
    """Same image through our `random` sampler and lightly's SimCLRTransform: same statistics."""
    from skimage.data import astronaut

    img = Image.fromarray(astronaut()).resize((128, 128))
    torch.manual_seed(0)
    np.random.seed(0)
    ours = ViewSampler((ViewSpec(2, 32),), "random")
    lightly = SimCLRTransform(input_size=32)
    a = torch.stack([v for _ in range(300) for v in ours(img, None)])
    b = torch.stack([v for _ in range(300) for v in lightly(img)])
    assert a.shape == b.shape == (600, 3, 32, 32)
    for stat in (lambda x: x.mean(dim=(2, 3)), lambda x: x.std(dim=(2, 3))):
        sa, sb = stat(a), stat(b)
        assert torch.allclose(sa.mean(0), sb.mean(0), atol=0.12), (sa.mean(0), sb.mean(0))
        assert torch.allclose(sa.std(0), sb.std(0), rtol=0.25, atol=0.05), (sa.std(0), sb.std(0))


# Per-spec augmentations (ViewSpec.photometric) and the methods' views


def blurred(views: torch.Tensor) -> torch.Tensor:
    """Per view: True when a checkerboard's black/white edges are gone (blur with sigma >= 1)."""
    return (views[..., 1:] - views[..., :-1]).abs().amax((-3, -2, -1)) < 0.6


def test_each_spec_gets_its_own_blur_probability():
    """DINO's blur: global view 1 always, global view 2 ~10 %, locals ~50 %; a spec without its own
    settings gets the sampler's (here: never blurred)."""
    torch.manual_seed(0)
    settings = {**OFF, "sigmas": (1.0, 2.0)}
    specs = tuple(
        ViewSpec(n, 16, **WHOLE, photometric=None if p is None else Photometric(**{**settings, "blur_prob": p}))
        for n, p in ((1, 1.0), (1, 0.1), (2, 0.5), (1, None))
    )
    sampler = ViewSampler(specs, photometric=Photometric(**settings).compose())
    views = draw(sampler, checkerboard(), 300)
    hit = blurred(views)  # (draws, views)
    assert hit[:, 0].all()
    assert within_binomial(int(hit[:, 1].sum()), 300, 0.1), hit[:, 1].float().mean()
    assert within_binomial(int(hit[:, 2:4].sum()), 600, 0.5), hit[:, 2:4].float().mean()
    assert not hit[:, 4].any()


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


def our_settings(spec: ViewSpec) -> dict:
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
