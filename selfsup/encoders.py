"""Frozen image encoders, the reference rows beside pretrained trials: SAM's own image encoder,
DINOv2, CLIP and a supervised ImageNet ResNet, each read the way its authors read it.

"There is no SAMantics!" (Espinosa et al., arXiv:2411.15288) linear-probed frozen SAM, DINOv2 and
CLIP encoders on ImageNet-1k and found SAM's features far less semantic than DINOv2's; these rows
put the same question to the sweep's own eval sets, with the same KNN and linear probe
(``selfsup.frozen``).

Encoders (``ENCODERS``), their features and their input:

- ``sam_vit_tiny`` ... ``sam_vit_h``: the image encoder of an HQ-SAM checkpoint, loaded by the
  masker's own loader (``masking.hqsam_generator.build_hqsam``). HQ-SAM keeps SAM's image encoder frozen
  (Ke et al., "Segment Anything in High Quality", NeurIPS 2023, Sec. 3.2), so its checkpoints hold
  SAM's encoder (vit_tiny: MobileSAM's TinyViT). SAM has no class token and its authors pool
  nothing: its output is a 256 x 64 x 64 embedding for the mask decoder (Kirillov et al. 2023,
  Sec. 3). We average it over the 64 x 64 positions (256-d). Input: 1024 px (SAM's fixed
  resolution: its position embeddings do not resize), ImageNet mean/std (SAM's ``pixel_mean`` /
  ``pixel_std`` x 255), bilinear. SAM resizes the longest side and pads; we resize the short side
  and centre-crop, like the other encoders, so every position holds image.
- ``dinov2_vits14`` ... ``dinov2_vitg14`` (timm ``vit_*_patch14_dinov2.lvd142m``): the normalised
  class token, the feature DINOv2's own k-NN evaluation reads (facebookresearch/dinov2,
  ``dinov2/eval/knn.py``: ``x_norm_clstoken``). Its linear evaluation concatenates that token with
  the mean patch token (``dinov2/eval/linear.py``); we keep one feature for both probes. Input: the
  authors' evaluation transform (``dinov2/data/transforms.py``: resize 256, centre crop 224,
  bicubic, ImageNet mean/std); the position embeddings are interpolated from the 518 px checkpoint
  (timm's ``dynamic_img_size``).
- ``clip_vitb32``, ``clip_vitb16``, ``clip_vitl14`` (timm ``vit_*_clip_quickgelu_224.openai``: the
  OpenAI weights need QuickGELU): the class token after ``ln_post``, *before* the projection to the
  joint embedding space, as CLIP's linear probes (Radford et al. 2021, App. A.3: "the features
  before the linear projection to the embedding space, which corresponds to I_f in Figure 3").
  Input: CLIP's own transform (openai/CLIP ``clip.py``: ``_transform``: resize 224 bicubic,
  centre crop 224, CLIP's mean/std).
- ``resnet18``, ``resnet50`` (torchvision, ImageNet-supervised): the global average pool that the
  classifier reads (He et al. 2016; 512-d / 2048-d). Input: torchvision's ``IMAGENET1K_V1``
  transform (resize 256, centre crop 224, bilinear, ImageNet mean/std).

Weights (``weights`` of an ``encoders`` entry): a file (read with ``pretrained=False`` and
``load_state_dict``; timm files in the original DINOv2 / OpenAI layouts are converted by timm's own
``checkpoint_filter_fn``; OpenAI's own ``.pt`` files are TorchScript archives, not state dicts:
use timm's or open_clip's files); ``cache``, the library's cache (timm: the Hugging Face hub cache;
torchvision: ``$TORCH_HOME/hub/checkpoints``), downloaded into it only with ``download``; or
``random``, the architecture with random weights, for tests (reports mark it). Nothing is
downloaded unless ``download`` is true: ``weights_problem`` says, without loading anything, what
is missing (the plan calls it before Ray starts).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn as nn

from selfsup.augment import IMAGENET_MEAN, IMAGENET_STD
from selfsup.data.evalsets import Preprocessing

RANDOM = "random"
"""``weights: random``: the architecture with random weights (tests; not a reference)."""
CACHE = "cache"
"""``weights: cache``: the library's own cache (timm: the Hugging Face hub; torchvision: torch hub)."""

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
"""openai/CLIP ``clip.py``, ``_transform``."""

SAM_INPUT = Preprocessing(1024, mean=IMAGENET_MEAN, std=IMAGENET_STD)
DINOV2_INPUT = Preprocessing(224, resize=256, interpolation="bicubic")
CLIP_INPUT = Preprocessing(224, mean=CLIP_MEAN, std=CLIP_STD, interpolation="bicubic")
RESNET_INPUT = Preprocessing(224, resize=256)


@dataclass(frozen=True)
class EncoderDef:
    """One frozen encoder: its library (``family``), its architecture there, the pretrained tag
    its cached weights carry (timm tag; torchvision weights enum), its input, its feature."""

    family: Literal["sam", "timm", "torchvision"]
    arch: str
    tag: str | None
    preprocessing: Preprocessing
    pooling: str

    @property
    def timm_name(self) -> str:
        return f"{self.arch}.{self.tag}" if self.tag else self.arch


_CLIP_POOL = "class token after ln_post, before the projection (CLIP App. A.3)"
_DINO_POOL = "normalised class token (DINOv2 k-NN evaluation)"
_SAM_POOL = "mean of the 256 x 64 x 64 image embedding over positions (SAM has no class token)"
_RESNET_POOL = "global average pool before the classifier"

ENCODERS: dict[str, EncoderDef] = {
    **{f"sam_{t}": EncoderDef("sam", t, None, SAM_INPUT, _SAM_POOL) for t in ("vit_tiny", "vit_b", "vit_l", "vit_h")},
    **{
        f"dinov2_vit{s[0]}14": EncoderDef("timm", f"vit_{s}_patch14_dinov2", "lvd142m", DINOV2_INPUT, _DINO_POOL)
        for s in ("small", "base", "large", "giant")
    },
    "clip_vitb32": EncoderDef("timm", "vit_base_patch32_clip_quickgelu_224", "openai", CLIP_INPUT, _CLIP_POOL),
    "clip_vitb16": EncoderDef("timm", "vit_base_patch16_clip_quickgelu_224", "openai", CLIP_INPUT, _CLIP_POOL),
    "clip_vitl14": EncoderDef("timm", "vit_large_patch14_clip_quickgelu_224", "openai", CLIP_INPUT, _CLIP_POOL),
    "resnet18": EncoderDef("torchvision", "resnet18", "IMAGENET1K_V1", RESNET_INPUT, _RESNET_POOL),
    "resnet50": EncoderDef("torchvision", "resnet50", "IMAGENET1K_V1", RESNET_INPUT, _RESNET_POOL),
}


def encoder_def(model: str) -> EncoderDef:
    if model not in ENCODERS:
        raise ValueError(f"unknown frozen encoder {model!r}; known: {', '.join(ENCODERS)}")
    return ENCODERS[model]


def preprocessing(model: str, input_size: int | None = None) -> Preprocessing:
    """The encoder's own input, or the same at ``input_size`` (resize margin kept in proportion).
    SAM's encoder only takes 1024 px."""
    pre = encoder_def(model).preprocessing
    if input_size is None or input_size == pre.size:
        return pre
    if encoder_def(model).family == "sam":
        raise ValueError(f"{model}: SAM's image encoder takes {pre.size} px only (got input_size {input_size})")
    resize = round(input_size * pre.resize / pre.size) if pre.resize else None
    return replace(pre, size=input_size, resize=resize)


# -- where the weights are ------------------------------------------------------------------------


def _hub_cache() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _timm_cached(d: EncoderDef) -> Path | None:
    """The model's weights in the Hugging Face cache, as timm would load them, or None."""
    import timm
    from huggingface_hub import try_to_load_from_cache

    repo = timm.models.get_pretrained_cfg(d.timm_name).hf_hub_id
    for filename in ("model.safetensors", "pytorch_model.bin"):  # timm's _hub: safetensors first
        found = try_to_load_from_cache(repo, filename, cache_dir=_hub_cache())
        if isinstance(found, str):
            return Path(found)
    return None


def _torchvision_weights(d: EncoderDef):  # noqa: ANN202 - a torchvision WeightsEnum member
    import torchvision

    return torchvision.models.get_model_weights(d.arch)[d.tag]


def _torchvision_cached(d: EncoderDef) -> Path:
    """Where torch hub keeps (or would keep) the weights: ``$TORCH_HOME/hub/checkpoints/<file of the URL>``."""
    url = _torchvision_weights(d).url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def weights_problem(model: str, weights: str, download: bool = False) -> str | None:
    """What keeps ``model`` from loading ``weights`` here without a download, in one line; None when
    nothing does (or when ``download`` allows fetching it into the cache). Loads nothing."""
    d = encoder_def(model)
    if weights == RANDOM:
        return None
    if weights == CACHE:
        if d.family == "sam":
            return f"{model}: SAM checkpoints have no library cache; give the checkpoint file (e.g. sam_hq_{d.arch}.pth)"
        if download:
            return None
        if d.family == "timm" and _timm_cached(d) is None:
            return (
                f"{model}: timm weights {d.timm_name} are not in the Hugging Face cache ({_hub_cache()}); "
                "give weights: PATH or set download: true"
            )
        if d.family == "torchvision" and not _torchvision_cached(d).is_file():
            return f"{model}: torchvision weights {_torchvision_cached(d)} not found; give weights: PATH or set download: true"
        return None
    if not Path(weights).is_file():
        return f"{model}: weights file {weights} does not exist"
    return None


def weights_file(model: str, weights: str, download: bool = False) -> Path | None:
    """The file to load (None for random weights), downloading into the library's cache only when
    ``download``; FileNotFoundError (the line of ``weights_problem``) when it is not there."""
    problem = weights_problem(model, weights, download)
    if problem:
        raise FileNotFoundError(problem)
    if weights == RANDOM:
        return None
    if weights != CACHE:
        return Path(weights)
    d = encoder_def(model)
    if d.family == "timm":
        found = _timm_cached(d)
        if found is None:  # download is true (else weights_problem said so)
            import timm
            from huggingface_hub import hf_hub_download

            repo = timm.models.get_pretrained_cfg(d.timm_name).hf_hub_id
            found = Path(hf_hub_download(repo, "model.safetensors", cache_dir=_hub_cache()))
        return found
    path = _torchvision_cached(d)
    if not path.is_file():
        torch.hub.download_url_to_file(_torchvision_weights(d).url, str(path), progress=False)
    return path


# -- the encoders ---------------------------------------------------------------------------------


class FrozenEncoder(nn.Module):
    """Images in (the encoder's ``preprocessing``), one feature vector per image out (``dim``)."""

    def __init__(self, name: str, net: nn.Module, dim: int, preprocessing: Preprocessing, pool: str):
        super().__init__()
        self.name, self.net, self.dim, self.preprocessing, self.pool = name, net, dim, preprocessing, pool
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool == "mean_positions":
            out = self.net(x)
            out = out[0] if isinstance(out, tuple) else out  # HQ-SAM's encoders also return interm. embeddings
            return out.mean(dim=(2, 3))
        return self.net(x)


def _mismatch(model: str, path: Path, result, arch: str) -> None:  # noqa: ANN001 - torch's _IncompatibleKeys
    if result.missing_keys or result.unexpected_keys:
        example = (result.missing_keys or result.unexpected_keys)[0]
        raise ValueError(
            f"{model}: weights {path} do not match {arch} ({len(result.missing_keys)} missing, "
            f"{len(result.unexpected_keys)} unexpected tensors, e.g. {example})"
        )


def _build_timm(model: str, d: EncoderDef, path: Path | None) -> tuple[nn.Module, int]:
    import timm

    pretrained = timm.models.get_pretrained_cfg(d.timm_name)
    net = timm.create_model(
        d.arch, pretrained=False, pretrained_cfg=pretrained, num_classes=pretrained.num_classes, dynamic_img_size=True
    )
    if path is not None:
        state = timm.models.load_state_dict(str(path), weights_only=True)
        convert = getattr(sys.modules[type(net).__module__], "checkpoint_filter_fn", None)
        if convert is not None:  # original DINOv2 / OpenAI CLIP layouts, position-embedding size
            state = convert(state, net)
        try:
            _mismatch(model, path, net.load_state_dict(state, strict=False), d.timm_name)
        except RuntimeError as err:  # a tensor of another shape
            raise ValueError(f"{model}: weights {path} do not match {d.timm_name} ({str(err).splitlines()[1].strip()})") from None
    net.reset_classifier(0)  # CLIP: drop the projection; the class token (pre-logits) remains
    return net, net.num_features


def _build_torchvision(model: str, d: EncoderDef, path: Path | None) -> tuple[nn.Module, int]:
    import torchvision

    net = torchvision.models.get_model(d.arch, weights=None)
    if path is not None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            _mismatch(model, path, net.load_state_dict(state, strict=False), d.arch)
        except RuntimeError as err:
            raise ValueError(f"{model}: weights {path} do not match {d.arch} ({str(err).splitlines()[1].strip()})") from None
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, dim


def _build_sam(model: str, d: EncoderDef, path: Path | None) -> tuple[nn.Module, int]:
    from masking.hqsam_generator import build_hqsam

    return build_hqsam(d.arch, path).image_encoder, 256  # SAM's neck: 256 channels (Kirillov et al. 2023)


def build_encoder(model: str, weights: str = RANDOM, download: bool = False, input_size: int | None = None) -> FrozenEncoder:
    """The frozen encoder ``model`` (``ENCODERS``) with ``weights`` (a file, ``cache`` or ``random``),
    in eval mode with gradients off."""
    d = encoder_def(model)
    pre = preprocessing(model, input_size)
    path = weights_file(model, weights, download)
    build = {"sam": _build_sam, "timm": _build_timm, "torchvision": _build_torchvision}[d.family]
    net, dim = build(model, d, path)
    return FrozenEncoder(model, net, dim, pre, "mean_positions" if d.family == "sam" else "model")
