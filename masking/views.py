"""Methods' views as ``CropSpec`` tuples, with lightly 1.6's per-view augmentations.

Each function returns the views in the order lightly's transform returns them, every spec with its
own ``Photometric`` (defaults cited from the lightly class named in each docstring). Feed the tuple
to ``masking.sampler.ViewSampler`` (CPU path) or ``selfsup.data.device_views.DeviceViews`` (device
path). What lightly does and these views do not: DINO's crops are resized bicubically by lightly,
bilinearly here (the sampler resizes every view with PIL's bilinear filter).
"""

from __future__ import annotations

from masking.sampler import CropSpec, Photometric

# lightly.transforms.BYOLView1Transform / BYOLView2Transform: jitter 0.4/0.4/0.2/0.1, sigmas (0.1, 2)
_BYOL = {"cj_bright": 0.4, "cj_contrast": 0.4, "cj_sat": 0.2, "cj_hue": 0.1}
# lightly.transforms.DINOTransform: jitter 0.8/0.8/0.4/0.2 x cj_strength 0.5, sigmas (0.1, 2)
_DINO = {"cj_bright": 0.8, "cj_contrast": 0.8, "cj_sat": 0.4, "cj_hue": 0.2}


def simclr_views(size: int, min_scale: float = 0.08, photometric: Photometric = Photometric()) -> tuple[CropSpec, ...]:
    """``lightly.transforms.SimCLRTransform``: two views of ``size`` px, crop scale (``min_scale``
    (lightly: 0.08), 1), both with ``photometric`` (``Photometric()`` is SimCLRTransform's defaults:
    jitter 0.8/0.8/0.8/0.2 with p 0.8, grayscale 0.2, blur 0.5 with sigma in [0.1, 2], flip 0.5)."""
    return (CropSpec(2, size, (min_scale, 1.0), photometric=photometric),)


def byol_views(size: int, min_scale: float = 0.08) -> tuple[CropSpec, ...]:
    """``lightly.transforms.BYOLTransform``: view 1 then view 2, ``size`` px, crop scale
    (``min_scale`` (lightly: 0.08), 1), jitter 0.4/0.4/0.2/0.1 (cj_strength 1) with p 0.8, grayscale
    0.2, flip 0.5; ``BYOLView1Transform``: blur p 1.0, no solarisation; ``BYOLView2Transform``: blur
    p 0.1, solarisation p 0.2."""
    return (
        CropSpec(1, size, (min_scale, 1.0), photometric=Photometric(**_BYOL, blur_prob=1.0)),
        CropSpec(1, size, (min_scale, 1.0), photometric=Photometric(**_BYOL, blur_prob=0.1, solarize_prob=0.2)),
    )


def dino_views(
    global_size: int,
    local_size: int,
    global_scale: tuple[float, float] = (0.4, 1.0),
    local_scale: tuple[float, float] = (0.05, 0.4),
    n_local: int = 6,
    cj_strength: float = 0.5,
) -> tuple[CropSpec, ...]:
    """``lightly.transforms.DINOTransform``: two global views of ``global_size`` px (crop scale
    ``global_scale``, lightly: (0.4, 1)), then ``n_local`` (lightly: 6) local views of
    ``local_size`` px (``local_scale``, lightly: (0.05, 0.4)). All: jitter 0.8/0.8/0.4/0.2 ×
    ``cj_strength`` (lightly: 0.5) with p 0.8, grayscale 0.2, flip 0.5, blur sigma in [0.1, 2].
    Global view 1: blur p 1.0, no solarisation; global view 2: blur p 0.1, solarisation p 0.2;
    local views: blur p 0.5, no solarisation (lightly passes ``solarization_prob=0`` to them).

    As in lightly 1.6, global view 2 keeps cj_strength 0.5 whatever ``cj_strength`` is:
    ``DINOTransform`` does not pass ``cj_strength`` on to that view's ``DINOViewTransform``, whose
    default is 0.5.
    """
    global_1 = Photometric(**_DINO, cj_strength=cj_strength, blur_prob=1.0)
    global_2 = Photometric(**_DINO, cj_strength=0.5, blur_prob=0.1, solarize_prob=0.2)
    local = Photometric(**_DINO, cj_strength=cj_strength, blur_prob=0.5)
    return (
        CropSpec(1, global_size, global_scale, photometric=global_1),
        CropSpec(1, global_size, global_scale, photometric=global_2),
        CropSpec(n_local, local_size, local_scale, photometric=local),
    )


def swav_views(
    sizes: tuple[int, ...] = (224, 96),
    counts: tuple[int, ...] = (2, 6),
    min_scales: tuple[float, ...] = (0.14, 0.05),
    max_scales: tuple[float, ...] = (1.0, 0.14),
    cj_strength: float = 1.0,
) -> tuple[CropSpec, ...]:
    """``lightly.transforms.SwaVTransform``: ``counts`` (lightly: (2, 6)) views of ``sizes``
    (lightly: (224, 96)) px, high resolution first, crop scales (``min_scales``, ``max_scales``)
    (lightly: (0.14, 0.05) to (1.0, 0.14)). Every crop gets ``SwaVViewTransform``'s SimCLR-like
    augmentations: jitter 0.8/0.8/0.8/0.2 × ``cj_strength`` (lightly: 1.0) with p 0.8, grayscale
    0.2, blur p 0.5 with sigma in [0.1, 2], flip 0.5, no solarisation."""
    if not len(sizes) == len(counts) == len(min_scales) == len(max_scales):
        raise ValueError("sizes, counts, min_scales and max_scales must have the same length (lightly's rule)")
    photometric = Photometric(cj_strength=cj_strength, blur_prob=0.5)
    return tuple(
        CropSpec(n, size, (lo, hi), photometric=photometric)
        for size, n, lo, hi in zip(sizes, counts, min_scales, max_scales)
    )
