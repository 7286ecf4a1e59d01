"""``input: gpu``: cached images, crop boxes on the CPU, views made in batches on the device.

Run here on a CPU device: the device path is the same code on either.
"""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import ks_2samp

from masking.crops import CropSampler
from masking.regions import enlarge_boxes
from selfsup.augment import IMAGENET_MEAN, IMAGENET_STD, Photometric, simclr_photometric
from selfsup.data.cached_crops import CachedCrops, device_batch
from selfsup.data.device_views import DeviceViews, solarize
from selfsup.data.image_cache import DeviceImages, ImageCache, gather_padded
from samdata.image_files import list_images, load_rgb
from selfsup.views import ViewSampler, ViewSpec, dino_views

ALPHA = 1e-3  # per statistic: a true match fails one of the ~10 comparisons below with p < 1 %


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A real photo (scikit-image's cat), 160 x 120, as a file."""
    from skimage.data import chelsea

    root = tmp_path_factory.mktemp("photo")
    Image.fromarray(chelsea()).resize((160, 120), Image.BICUBIC).save(root / "cat.png")
    return root


def batch_of(cache, dataset, draws):
    """``draws`` items of image 0 as the training loop batches them: (pixels, sizes, boxes) on the device (CPU)."""
    items = [dataset[0] for _ in range(draws)]
    boxes = torch.stack([b for b, _ in items])
    return device_batch(DeviceImages(cache, "cpu"), boxes, torch.tensor([i for _, i in items]))


def cpu_views(image, crops, sampling, boxes, draws, seed):
    torch.manual_seed(seed)
    sampler = ViewSampler(crops, sampling, 1.3, simclr_photometric())
    return [torch.stack(views) for views in zip(*(sampler(image, boxes) for _ in range(draws)))]


def device_views(cache, crops, sampling, boxes, draws, seed, photometric=None, batch=250):
    """Views of image 0 of ``cache`` through the gpu path, and their crop boxes in original pixels."""
    torch.manual_seed(seed)
    dataset = CachedCrops(cache, CropSampler(crops, sampling, 1.3), None if boxes is None else lambda _: boxes)
    make = DeviceViews(crops, Photometric(**(photometric or {})))
    generator = torch.Generator().manual_seed(seed + 1)
    views, crop_boxes = [], []
    width, height = cache.original_sizes[0]
    _, h, w = cache.images[0].shape
    for _ in range(math.ceil(draws / batch)):
        pixels, sizes, boxes_ = batch_of(cache, dataset, batch)
        views.append(make(pixels, sizes, boxes_, generator))
        crop_boxes.append(boxes_ * torch.tensor([width / w, height / h, width / w, height / h]))
    return [torch.cat(v)[:draws] for v in zip(*views)], torch.cat(crop_boxes)[:draws]


def statistics(views: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per view: channel means, contrast, saturation, sharpness (pixels back in [0, 1])."""
    x = views * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    stats = {f"mean {c}": x[:, i].mean((1, 2)) for i, c in enumerate("RGB")}
    stats["std"] = x.std((1, 2, 3))
    stats["saturation"] = (x.amax(1) - x.amin(1)).mean((1, 2))
    stats["sharpness"] = (x[..., 1:] - x[..., :-1]).abs().mean((1, 2, 3))
    return stats


def assert_same_distribution(a: dict, b: dict) -> None:
    for key, values in a.items():
        result = ks_2samp(values.numpy(), b[key].numpy())
        assert result.pvalue > ALPHA, f"{key}: {values.mean():.4f} vs {b[key].mean():.4f}, KS p = {result.pvalue:.2g}"


def test_device_views_match_the_cpu_views_in_distribution(photo):
    """Whole-image sampling, SimCLR's augmentations: 2,000 views each way, every statistic agrees."""
    image = load_rgb(photo / "cat.png")
    crops = (ViewSpec(2, 32),)
    cpu = cpu_views(image, crops, "random", None, 1000, seed=0)
    cache = ImageCache.build(photo, ["cat.png"], short_side=200)  # no resize: only the augmentations differ
    dev, _ = device_views(cache, crops, "random", None, 1000, seed=0)
    assert [tuple(v.shape) for v in dev] == [tuple(v.shape) for v in cpu] == [(1000, 3, 32, 32)] * 2
    assert_same_distribution(statistics(torch.cat(cpu)), statistics(torch.cat(dev)))


def test_region_views_match_the_cpu_views_from_a_smaller_cache(photo):
    """Region sampling from a cache at half the size: crop boxes (back in original pixels) and view
    statistics agree with the CPU path on the full image, and every crop lies in one enlarged region."""
    image = load_rgb(photo / "cat.png")
    regions = np.array([[20, 10, 90, 80], [70, 40, 150, 110]])
    crops = (ViewSpec(2, 32),)
    cpu = cpu_views(image, crops, "regions", regions, 1000, seed=1)
    torch.manual_seed(1)
    sampler = CropSampler(crops, "regions", 1.3)
    cpu_boxes = torch.tensor([sampler.crop_boxes(160, 120, regions) for _ in range(1000)])
    cache = ImageCache.build(photo, ["cat.png"], short_side=60)
    assert cache.images[0].shape == (3, 60, 80)
    dev, dev_boxes = device_views(cache, crops, "regions", regions, 1000, seed=2)
    for k, name in enumerate(("x0", "y0", "x1", "y1")):
        for view in range(2):
            result = ks_2samp(cpu_boxes[:, view, k].numpy(), dev_boxes[:, view, k].numpy())
            assert result.pvalue > ALPHA, (name, view, result.pvalue)
    enlarged = torch.tensor(enlarge_boxes(regions, 1.3, 160, 120))
    inside = (dev_boxes[:, :, None, :2] >= enlarged[None, None, :, :2] - 1e-3).all(-1) & (
        dev_boxes[:, :, None, 2:] <= enlarged[None, None, :, 2:] + 1e-3
    ).all(-1)  # (draws, views, regions)
    assert inside.all(1).any(1).all(), "all views of a draw lie inside one enlarged region"
    assert_same_distribution(statistics(torch.cat(cpu)), statistics(torch.cat(dev)))


def test_region_views_show_only_the_region_pixels():
    """A red and a green square on black: every view of a draw, made on the device, is all red or all green."""
    img = np.zeros((120, 160, 3), np.uint8)
    img[10:60, 10:60] = (255, 0, 0)
    img[50:110, 90:150] = (0, 255, 0)
    regions = np.array([[10, 10, 60, 60], [90, 50, 150, 110]])
    cache = ImageCache.from_arrays(["squares"], [np.ascontiguousarray(img.transpose(2, 0, 1))], [(160, 120)], 120)
    crops = (ViewSpec(2, 24), ViewSpec(3, 12, scale=(0.05, 0.4)))
    off = {"cj_prob": 0, "gray_prob": 0, "blur_prob": 0, "normalize": False}
    torch.manual_seed(0)
    dataset = CachedCrops(cache, CropSampler(crops, "regions", c=1.0), lambda _: regions)
    pixels, sizes, boxes = batch_of(cache, dataset, 100)
    views = DeviceViews(crops, Photometric(**off))(pixels, sizes, boxes, torch.Generator().manual_seed(0))
    assert [tuple(v.shape[1:]) for v in views] == [(3, 24, 24)] * 2 + [(3, 12, 12)] * 3
    means = torch.stack([v.mean((2, 3)) for v in views], 1)  # (draws, views, 3)
    colour = means.argmax(-1)
    assert (colour == colour[:, :1]).all() and (means.amax(-1) > 0.95).all()
    assert 30 < (colour[:, 0] == 0).sum() < 70  # the region is picked uniformly


def test_cache_holds_each_image_decoded_and_resized_once(tmp_path):
    """The cached pixels are the file's, resized once (short side to the cache's, never upscaled),
    and region boxes land on the same objects in cache pixels. Unreadable files are left out."""
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (100, 240, 3), dtype=np.uint8)
    big[20:60, 100:180] = (0, 0, 255)  # an object at box (100, 20, 180, 60)
    Image.fromarray(big).save(tmp_path / "big.png")
    Image.fromarray(rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)).save(tmp_path / "small.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="skipping 1 unreadable image"):
        cache = ImageCache.build(tmp_path, list_images(tmp_path), short_side=50, threads=2)
    assert cache.paths == ["big.png", "small.jpg"]
    expected = load_rgb(tmp_path / "big.png").resize((120, 50), Image.BICUBIC)
    assert np.array_equal(cache.images[0], np.asarray(expected).transpose(2, 0, 1))
    assert np.array_equal(cache.images[1], np.asarray(load_rgb(tmp_path / "small.jpg")).transpose(2, 0, 1))
    assert cache.original_sizes == [(240, 100), (20, 30)]
    x0, y0, x1, y1 = cache.to_cache(0, np.array([[100, 20, 180, 60]]))[0]
    assert (x0, y0, x1, y1) == pytest.approx((50, 10, 90, 30))
    inside = cache.images[0][:, int(y0) + 1 : int(y1) - 1, int(x0) + 1 : int(x1) - 1]
    assert (inside[2] == 255).all() and (inside[:2] == 0).all()


def test_cache_build_reads_exif_orientation_from_headers_and_threads_agree(tmp_path):
    """The header pass sizes each slice as ``load_rgb`` decodes it (EXIF rotation applied); any
    number of threads gives the same flat array."""
    rng = np.random.default_rng(1)
    for i in range(5):
        exif = Image.Exif()
        exif[0x0112] = 6 if i % 2 else 1  # 6: rotated 90 degrees, width and height swap
        Image.fromarray(rng.integers(0, 256, (40 + i, 90, 3), dtype=np.uint8)).save(tmp_path / f"{i}.jpg", exif=exif)
    one = ImageCache.build(tmp_path, list_images(tmp_path), short_side=30, threads=1)
    many = ImageCache.build(tmp_path, list_images(tmp_path), short_side=30, threads=3)
    assert np.array_equal(one.pixels, many.pixels) and np.array_equal(one.offsets, many.offsets)
    for i, rel in enumerate(one.paths):
        upright = load_rgb(tmp_path / rel)
        assert one.original_sizes[i] == upright.size
        expected = upright.resize(tuple(int(v) for v in one.shapes[i][::-1]), Image.BICUBIC)
        assert np.array_equal(one.image(i), np.asarray(expected).transpose(2, 0, 1)), rel
    assert one.shapes[1].tolist() == [round(30 * 90 / 41), 30]  # the rotated image is portrait
    twice = ImageCache.build(tmp_path, ["3.jpg", "0.jpg", "3.jpg"], short_side=30)  # a repeated path: one slice
    assert twice.paths == ["3.jpg", "0.jpg", "3.jpg"] and twice.offsets[0] == twice.offsets[2]
    assert twice.nbytes == one.image(0).nbytes + one.image(3).nbytes
    assert np.array_equal(twice.image(2), one.image(3)) and np.array_equal(twice.image(1), one.image(0))


def test_device_batch_is_each_image_zero_padded(tmp_path):
    """One gather gives what padding each image by hand gives, for any order and repeats."""
    rng = np.random.default_rng(2)
    arrays = [rng.integers(1, 256, (3, h, w), dtype=np.uint8) for h, w in ((5, 7), (9, 4), (6, 6), (1, 10))]
    cache = ImageCache.from_arrays([str(i) for i in range(4)], arrays, [(a.shape[2], a.shape[1]) for a in arrays], 10)
    indices = torch.tensor([2, 0, 3, 0, 1])
    images, sizes = DeviceImages(cache, "cpu").batch(indices)
    assert images.dtype == torch.uint8 and images.shape == (5, 3, 9, 10)
    for row, i in zip(images, indices.tolist()):
        expected = torch.zeros(3, 9, 10, dtype=torch.uint8)
        expected[:, : arrays[i].shape[1], : arrays[i].shape[2]] = torch.from_numpy(arrays[i])
        assert torch.equal(row, expected)
    assert sizes.tolist() == [list(arrays[i].shape[1:]) for i in indices.tolist()]
    # the GPU's one-gather path (run here on CPU tensors), with the int32 positions it uses there
    flat = torch.from_numpy(cache.pixels)
    for dtype in (torch.int32, torch.int64):
        offsets = torch.from_numpy(cache.offsets).to(dtype)[indices]
        shapes = torch.from_numpy(cache.shapes).to(dtype)[indices]
        assert torch.equal(gather_padded(flat, offsets, shapes, 9, 10), images)


# Per-crop augmentations (ViewSpec.photometric) on the device path

OFF = {"cj_prob": 0.0, "gray_prob": 0.0, "blur_prob": 0.0, "normalize": False}
WHOLE = {"scale": (1.0, 1.0), "ratio": (1.0, 1.0)}  # a square image's crop is the image itself


def views_of(pixels: np.ndarray, crops, draws: int, photometric=Photometric(), seed=0) -> torch.Tensor:
    """(draws, views, 3, s, s): views of one (s, s, 3) uint8 image made on the device (one size)."""
    size = pixels.shape[0]
    cache = ImageCache.from_arrays(["image"], [np.ascontiguousarray(pixels.transpose(2, 0, 1))], [(size, size)], size)
    torch.manual_seed(seed)
    dataset = CachedCrops(cache, CropSampler(crops))
    images, sizes, boxes = batch_of(cache, dataset, draws)
    return torch.stack(DeviceViews(crops, photometric)(images, sizes, boxes, torch.Generator().manual_seed(seed)), 1)


def constant(rgb, size=8) -> np.ndarray:
    return np.full((size, size, 3), rgb, np.uint8)


def within_binomial(hits: int, n: int, p: float) -> bool:
    return abs(hits / n - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1e-12


def test_device_solarisation_inverts_views_with_its_probability():
    """Constant 200: a solarised view is 55 everywhere, the others stay 200; the fraction ~ p."""
    for prob in (0.0, 0.3):
        spec = ViewSpec(4, 8, **WHOLE, photometric=Photometric(**OFF, solarize_prob=prob))
        views = views_of(constant(200), (spec,), 200) * 255
        inverted = (views - 55).abs().amax((2, 3, 4)) < 1e-3
        kept = (views - 200).abs().amax((2, 3, 4)) < 1e-3
        assert (inverted ^ kept).all()
        assert within_binomial(int(inverted.sum()), inverted.numel(), prob), (prob, inverted.float().mean())


def test_device_solarisation_threshold_and_position_are_lightlys():
    """As PIL: 128 -> 127, 127 stays; after the grayscale, as lightly: (200, 100, 50) grays to
    124.2, below the threshold, and stays (solarising first would give 80.8)."""
    always = Photometric(**OFF, solarize_prob=1.0)
    for value, expected in ((128, 127), (127, 127), (255, 0), (0, 0)):
        views = views_of(constant(value), (ViewSpec(2, 8, **WHOLE, photometric=always),), 3) * 255
        assert torch.allclose(views, torch.full_like(views, expected), atol=1e-3), value
    gray_first = Photometric(**{**OFF, "gray_prob": 1.0}, solarize_prob=1.0)
    views = views_of(constant((200, 100, 50)), (ViewSpec(2, 8, **WHOLE, photometric=gray_first),), 3) * 255
    assert torch.allclose(views, torch.full_like(views, 124.2), atol=0.01)


def test_device_solarize_is_pils_on_every_uint8_value_despite_float_error():
    """Every k / 255, and k / 255 off by a float32 rounding error either way, solarises to PIL's
    ``ImageOps.solarize(threshold=128)`` of k."""
    from PIL import ImageOps

    levels = np.arange(256, dtype=np.uint8)
    pil = np.asarray(ImageOps.solarize(Image.fromarray(np.repeat(levels[None, :, None], 3, -1))))[0, :, 0]
    x = torch.from_numpy(levels).float() / 255
    for error in (0.0, -1e-6, 1e-6):
        ours = solarize((x + error).clamp(0, 1)) * 255
        assert torch.allclose(ours, torch.tensor(pil, dtype=torch.float32), atol=1e-3), error


def test_device_views_give_each_spec_its_own_blur_probability():
    """DINO's blur: global view 1 always, global view 2 ~10 %, locals ~50 %; a spec without its own
    settings gets DeviceViews' (here: never blurred). A checkerboard's edges tell a blurred view."""
    settings = {**OFF, "sigmas": (1.0, 2.0)}
    specs = tuple(
        ViewSpec(n, 16, **WHOLE, photometric=None if p is None else Photometric(**{**settings, "blur_prob": p}))
        for n, p in ((1, 1.0), (1, 0.1), (2, 0.5), (1, None))
    )
    board = ((np.indices((16, 16)) // 2).sum(0) % 2 * 255).astype(np.uint8)
    views = views_of(np.repeat(board[..., None], 3, -1), specs, 300, Photometric(**settings))
    hit = (views[..., 1:] - views[..., :-1]).abs().amax((2, 3, 4)) < 0.6  # (draws, views)
    assert hit[:, 0].all()
    assert within_binomial(int(hit[:, 1].sum()), 300, 0.1), hit[:, 1].float().mean()
    assert within_binomial(int(hit[:, 2:4].sum()), 600, 0.5), hit[:, 2:4].float().mean()
    assert not hit[:, 4].any()


def test_device_jitter_ranges_are_per_channel():
    """cj_bright 0.8 and cj_sat 0.2 (DINO-like): brightness factors span [0.2, 1.8], saturation
    factors only [0.8, 1.2]. Measured on a constant colour: brightness scales its luma, saturation
    (which keeps the luma) scales R - G about it."""
    rgb = (100, 60, 60)
    p = Photometric(**{**OFF, "cj_prob": 1.0}, cj_bright=0.8, cj_contrast=0.0, cj_sat=0.2, cj_hue=0.0)
    views = views_of(constant(rgb), (ViewSpec(4, 8, **WHOLE, photometric=p),), 250).double().mean((-2, -1))
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
    colour = torch.tensor(rgb, dtype=torch.float64) / 255
    brightness = (views * luma).sum(-1) / (colour * luma).sum()
    saturation = (views[..., 0] - views[..., 1]) / (brightness * (colour[0] - colour[1]))
    assert brightness.min() < 0.3 and brightness.max() > 1.7
    assert 0.79 < saturation.min() < 0.85 and 1.15 < saturation.max() < 1.21, (saturation.min(), saturation.max())


def test_device_views_of_dino_specs_match_the_cpu_views_in_distribution(photo):
    """``dino_views``: global view 1 (always blurred), global view 2 (rarely blurred, solarised
    20 %), locals: each view's statistics agree between the CPU and the device path."""
    image = load_rgb(photo / "cat.png")
    crops = dino_views(32, 16, n_local=1)
    cpu = cpu_views(image, crops, "random", None, 400, seed=3)
    cache = ImageCache.build(photo, ["cat.png"], short_side=200)
    dev, _ = device_views(cache, crops, "random", None, 400, seed=3, batch=200)
    assert [tuple(v.shape) for v in dev] == [tuple(v.shape) for v in cpu] == [(400, 3, 32, 32)] * 2 + [(400, 3, 16, 16)]
    for view, (a, b) in enumerate(zip(cpu, dev)):
        try:
            assert_same_distribution(statistics(a), statistics(b))
        except AssertionError as error:
            raise AssertionError(f"view {view}: {error}") from None


def test_device_views_depend_only_on_the_generator():
    """With per-spec settings and solarisation, the views are a function of the generator's seed
    alone (a resumed epoch reseeds it): the global RNG's state does not matter."""
    rng = np.random.default_rng(0)
    pixels = torch.from_numpy(rng.integers(0, 256, (4, 3, 24, 24), dtype=np.uint8))
    sizes = torch.full((4, 2), 24)
    boxes = torch.tensor([0.0, 0.0, 20.0, 20.0]).expand(4, 8, 4)
    make = DeviceViews(dino_views(16, 8))
    runs = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        runs.append(make(pixels, sizes, boxes, torch.Generator().manual_seed(5)))
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    other = make(pixels, sizes, boxes, torch.Generator().manual_seed(6))
    assert not all(torch.equal(a, b) for a, b in zip(runs[0], other))


def test_device_views_refuse_a_spec_with_too_much_hue():
    too_much = ViewSpec(2, 16, photometric=Photometric(cj_strength=2.0, cj_hue=0.3))
    DeviceViews((ViewSpec(2, 16),), Photometric(cj_strength=2.0, cj_hue=0.25))  # 0.5: torchvision's limit
    with pytest.raises(ValueError, match="hue jitter above 0.5"):
        DeviceViews((ViewSpec(2, 16), too_much))


def gpu_run(synthetic, boxes, **overrides):
    from selfsup.config import EvalConfig, TrainConfig
    from selfsup.training import Pretraining

    settings = {"epochs": 2, "batch_size": 16, "image_size": 32, "backbone_width": 8, "stem": "cifar", "input": "gpu"}
    train = TrainConfig(**{**settings, "workers": 0, **overrides})
    return Pretraining(train, EvalConfig(every=100, linear_epochs=1), synthetic.images, [], boxes_of=boxes.__getitem__)


@pytest.mark.parametrize("method", ["samclr", "dino"])
def test_gpu_input_run_gives_finite_losses(synthetic, boxes, method):
    """SAMCLR's region views and DINO's multi-crop (2 global + 6 local views of two sizes)."""
    history = gpu_run(synthetic, boxes, method=method, epochs=1).fit()
    assert [m["epoch"] for m in history] == [1]
    assert all(math.isfinite(m["train/loss"]) and m["images_per_s"] > 0 for m in history)


@pytest.mark.slow  # three runs of 2 epochs
@pytest.mark.parametrize("workers", [0, 2])
def test_gpu_input_run_resumes_exactly(synthetic, boxes, tmp_path, workers):
    from tests.selfsup.exact_resume import assert_resumes_exactly

    assert_resumes_exactly(lambda: gpu_run(synthetic, boxes, method="samclr", workers=workers), 1, tmp_path / "ckpt.pt")


def test_input_settings_are_validated():
    from pydantic import TypeAdapter, ValidationError

    from selfsup.config import TrainConfig

    adapter = TypeAdapter(TrainConfig)
    assert adapter.validate_python({"input": "gpu", "cache_scale": 2.0, "compile": True}).input == "gpu"
    for bad in ({"input": "tpu"}, {"cache_scale": 0.5}):
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)


def test_checkpoints_from_before_the_input_settings_resume_only_on_the_cpu_path(synthetic, boxes, tmp_path):
    """A checkpoint whose config lacks ``input``/``cache_scale``/``compile`` was made with their
    defaults: it resumes a run with the defaults and is refused by an ``input: gpu`` run."""
    old = gpu_run(synthetic, boxes, input="cpu")
    state = old.state_dict()
    for key in ("input", "cache_scale", "compile"):
        del state["config"][key]
    torch.save(state, tmp_path / "old.pt")
    same = gpu_run(synthetic, boxes, input="cpu")
    same.restore(tmp_path / "old.pt")
    assert same.epoch == 0
    with pytest.raises(ValueError, match=r"other settings \(input\)"):
        gpu_run(synthetic, boxes).restore(tmp_path / "old.pt")
