"""HQ-SAM's automatic mask generator, batched: the same masks as the reference, much faster.

The SAMCLR paper segments every pretraining image with HQ-SAM's ``SamAutomaticMaskGenerator``
(segment-anything-hq): a grid of point prompts (32 x 32 by default), three masks per prompt,
filtered by predicted IoU and stability, de-duplicated by box NMS. The reference runs one image
at a time, 64 prompts per decoder call, upsamples *every* mask logit to the full image before
filtering, and round-trips every mask through run-length encoding on the CPU.

``BatchedMaskGenerator`` runs the same modules on the same inputs with the same thresholds, in a
different order:

- the image encoder runs on a batch of images (and crops) at once, its attention through PyTorch's
  fused ``scaled_dot_product_attention`` with the positional bias as an additive mask
  (``masking.hqsam_encoder``), and compiled with the decoder when ``compile`` is on;
- the mask decoder gets hundreds of prompts per call (each prompt is its own batch element, so
  the chunk size does not change any result);
- the decoder runs split (``masking.hqsam_decoder.SplitHQDecoder``): the two-way transformer and
  the IoU head on every prompt, then upscaling, HQ-SAM's mask-feature path and the mask product
  only on prompts above ``pred_iou_thresh`` (the IoU head reads only the IoU token), with HQ's last
  convolution folded into the per-prompt hypernetwork vector and layer 0's image side computed
  once per image; the stability score and everything after it are computed exactly as in the
  reference, on the device;
- masks stay boolean tensors on the device until the end: no run-length encoding.

Optionally the encoder and decoder run in bf16/fp16 (weights cast; prompt encoder and the decoder's
token heads, hence the IoU threshold comparison, in float32). ``tests/masking/test_hqsam.py``
checks agreement with the reference in float32 (mask IoU >= 0.98 per matched mask, same count)
and ``bench/masks.py`` measures both side by side, per module.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.ops.boxes import batched_nms, box_area

from masking.hqsam_decoder import DecoderOptions, SplitHQDecoder, Timer, untimed
from masking import hqsam_encoder

MODEL_TYPES = ("vit_tiny", "vit_b", "vit_l", "vit_h")


@dataclass(frozen=True)
class AMGSettings:
    """``SamAutomaticMaskGenerator``'s settings, with its defaults (chosen for ViT-H)."""

    points_per_side: int = 32
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1


def build_hqsam(model_type: str, checkpoint: str | Path | None, device: str | torch.device = "cpu") -> torch.nn.Module:
    """An HQ-SAM model; ``checkpoint=None`` gives random weights (real architecture, for tests).

    Checkpoints load with ``map_location`` (a GPU-saved file loads on a CPU machine) and
    ``weights_only=True``; a missing file or one of another model type is a one-line error.
    """
    from segment_anything_hq import sam_model_registry

    if model_type not in MODEL_TYPES:
        raise ValueError(f"hqsam: unknown model_type {model_type!r}; known: {', '.join(MODEL_TYPES)}")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise FileNotFoundError(f"hqsam: checkpoint {checkpoint} not found (download it from the HQ-SAM release page)")
    model = sam_model_registry[model_type](checkpoint=None)
    if checkpoint is not None:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        state = state.get("model", state) if isinstance(state, dict) else state
        own = model.state_dict()
        missing = [k for k in own if k not in state]
        wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
        if missing or wrong:
            example = (wrong or missing)[0]
            raise ValueError(
                f"hqsam: checkpoint {checkpoint} does not match model_type {model_type} "
                f"({len(missing)} missing and {len(wrong)} mis-shaped tensors, e.g. {example})"
            )
        model.load_state_dict({k: state[k] for k in own})
    return model.to(device).eval()


@dataclass
class _View:
    """One encoder input: an image, or one crop of it (crop layers)."""

    image: int
    crop_box: list[int]
    layer: int
    crop_size: tuple[int, int]
    input_size: tuple[int, int]


class BatchedMaskGenerator:
    def __init__(
        self,
        model: torch.nn.Module,
        settings: AMGSettings = AMGSettings(),
        dtype: torch.dtype = torch.float32,
        image_batch: int = 4,
        prompt_batch: int = 256,
        upsample_budget: float = 2e9,
        compile: bool = False,
        options: DecoderOptions = DecoderOptions(),
        timer: Timer = untimed,
        fused_attention: bool = True,
    ):
        from segment_anything_hq.utils.amg import build_all_layer_point_grids
        from segment_anything_hq.utils.transforms import ResizeLongestSide

        original = model
        if dtype != torch.float32 or compile:
            # weights in half precision (a copy): autocast would re-cast the decoder's per-prompt
            # copies of the image embedding at every layer (measured: a quarter of GPU time on
            # an H100); the prompt encoder's Fourier features stay in float32
            model = copy.deepcopy(model).to(dtype)
            model.prompt_encoder.float()
            if fused_attention:  # our own copy: fused for good (and before compiling)
                hqsam_encoder.swap_to_fused(model.image_encoder)
        self.fuse_per_call = fused_attention and model is original
        """The caller's model is shared (e.g. with the reference): fused only while we encode."""
        self.model = model
        self._encoder = torch.compile(model.image_encoder, dynamic=False) if compile else model.image_encoder
        self.decoder = SplitHQDecoder(model.mask_decoder, options)
        self.options = options
        self.compile = compile
        self._tokens, self._masks = self.decoder.tokens, self.decoder.masks
        if compile:
            # static shapes: prompt chunks and survivor batches are padded to a few fixed sizes
            # (``_padded``), so each size compiles once per process
            self._tokens = torch.compile(self.decoder.tokens, dynamic=False)
            self._masks = torch.compile(self.decoder.masks, dynamic=False)
        self.settings = settings
        self.dtype = dtype
        self.image_batch = image_batch
        self.prompt_batch = prompt_batch
        self.upsample_budget = upsample_budget
        """Bytes of full-resolution float logits upsampled at once (bounds memory on big images)."""
        self.timer = timer
        """Called with a stage name around each stage (``bench/masks.py`` passes a profiler)."""
        self.transform = ResizeLongestSide(model.image_encoder.img_size)
        self.point_grids = build_all_layer_point_grids(
            settings.points_per_side, settings.crop_n_layers, settings.crop_n_points_downscale_factor
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def generate(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Masks (N, H, W) bool and predicted IoUs (N,) float32 of each RGB uint8 image."""
        from segment_anything_hq.utils.amg import generate_crop_boxes

        views: list[_View] = []
        inputs: list[torch.Tensor] = []
        for i, image in enumerate(images):
            boxes, layers = generate_crop_boxes(image.shape[:2], self.settings.crop_n_layers, self.settings.crop_overlap_ratio)
            for box, layer in zip(boxes, layers):
                x0, y0, x1, y1 = box
                crop = image[y0:y1, x0:x1, :]
                resized = torch.as_tensor(self.transform.apply_image(crop)).permute(2, 0, 1)
                views.append(_View(i, box, layer, crop.shape[:2], tuple(resized.shape[-2:])))
                inputs.append(resized)
        per_image: list[list[dict[str, torch.Tensor]]] = [[] for _ in images]
        for start in range(0, len(views), self.image_batch):
            chunk = inputs[start : start + self.image_batch]
            batch = torch.stack([self.model.preprocess(x.to(self.device, torch.float32)) for x in chunk])
            with self.timer("encoder"), hqsam_encoder.fused_attention(self.model.image_encoder, self.fuse_per_call):
                features, interm = self._encoder(batch.to(self.dtype))
            for j, view in enumerate(views[start : start + self.image_batch]):
                orig = images[view.image].shape[:2]
                per_image[view.image].append(self._process_view(view, features[j : j + 1], [f[j : j + 1] for f in interm], orig))
        return [self._merge_crops(parts, image.shape[:2]) for parts, image in zip(per_image, images)]

    def _padded(self, index: torch.Tensor, cap: int) -> torch.Tensor:
        """With ``compile``: ``index`` padded (repeating its last entry) to the next of a few fixed sizes."""
        if not self.compile or len(index) == 0:
            return index
        size = next((s for s in _bucket_sizes(cap) if s >= len(index)), cap)
        return torch.cat([index, index[-1:].expand(size - len(index))])

    def _process_view(self, view: _View, features: torch.Tensor, interm: list[torch.Tensor], orig: tuple[int, int]) -> dict[str, torch.Tensor]:
        from segment_anything_hq.utils.amg import (
            batched_mask_to_box,
            calculate_stability_score,
            is_box_near_crop_edge,
            uncrop_boxes_xyxy,
            uncrop_masks,
        )

        s = self.settings
        # no stage timing inside compiled graphs: a compiled call is timed whole
        timer, whole = (untimed, self.timer) if self.compile else (self.timer, untimed)
        threshold = self.model.mask_threshold
        points = self.point_grids[view.layer] * np.array(view.crop_size)[None, ::-1]
        coords = torch.as_tensor(self.transform.apply_coords(points, view.crop_size), device=self.device)
        h, w = view.crop_size
        with self.timer("HQ path"):
            hq_features = self.decoder.image_side(features, interm)
        image_pe = self.model.prompt_encoder.get_dense_pe().to(self.dtype)
        # full-resolution float32 logits of the masks upsampled at once must fit in the budget
        mask_step = max(1, min(self.prompt_batch, int(self.upsample_budget / (4 * (1024 * 1024 + h * w)))))
        masks, scores, boxes = [], [], []
        for start in range(0, len(coords), self.prompt_batch):
            pts = coords[start : start + self.prompt_batch]
            n = len(pts)
            pts = pts[self._padded(torch.arange(n, device=self.device), self.prompt_batch)]
            labels = torch.ones(len(pts), dtype=torch.int, device=self.device)
            with self.timer("prompt encoder"):
                sparse, dense = self.model.prompt_encoder(points=(pts[:, None, :], labels[:, None]), boxes=None, masks=None)
            with whole("compiled transformer"):
                hs, keys = self._tokens(features, image_pe, sparse.to(self.dtype), dense.to(self.dtype), timer=timer)
            with self.timer("token heads"):
                iou, idx = self.decoder.heads(hs[:n])  # float32: the threshold comparison is exact
            if self.options.iou_first and s.pred_iou_thresh > 0:  # the IoU head reads only the IoU token
                survivors = torch.nonzero(iou > s.pred_iou_thresh)[:, 0]
            else:
                survivors = torch.arange(n, device=self.device)
            for sub in range(0, len(survivors), mask_step):
                sel = survivors[sub : sub + mask_step]
                run = self._padded(sel, mask_step)
                with whole("compiled masks"):
                    low_res = self._masks(hs[run], keys[run], idx[run], hq_features, timer=timer)[: len(sel)].float()
                score = iou[sel]
                if not self.options.iou_first and s.pred_iou_thresh > 0:  # the reference's order
                    keep = score > s.pred_iou_thresh
                    low_res, score = low_res[keep], score[keep]
                if len(score) == 0:
                    continue
                logits = self.model.postprocess_masks(low_res[:, None], view.input_size, view.crop_size)[:, 0]
                stability = calculate_stability_score(logits, threshold, s.stability_score_offset)
                if s.stability_score_thresh > 0:
                    keep = stability >= s.stability_score_thresh
                    logits, score = logits[keep], score[keep]
                binary = logits > threshold
                del logits
                box = batched_mask_to_box(binary)
                keep = ~is_box_near_crop_edge(box, view.crop_box, [0, 0, orig[1], orig[0]])
                masks.append(binary[keep])
                scores.append(score[keep])
                boxes.append(box[keep])
        if not masks:
            empty = torch.zeros((0, *orig), dtype=torch.bool, device=self.device)
            return {"masks": empty, "scores": torch.zeros(0, device=self.device), "boxes": torch.zeros((0, 4), device=self.device), "crop_boxes": torch.zeros((0, 4), device=self.device)}
        mask_t, score_t, box_t = torch.cat(masks), torch.cat(scores), torch.cat(boxes)
        keep = batched_nms(box_t.float(), score_t, torch.zeros_like(box_t[:, 0]), iou_threshold=s.box_nms_thresh)
        mask_t, score_t, box_t = mask_t[keep], score_t[keep], box_t[keep]
        crop_boxes = torch.tensor([view.crop_box] * len(keep), device=self.device, dtype=torch.float32)
        return {
            "masks": uncrop_masks(mask_t, view.crop_box, orig[0], orig[1]),
            "scores": score_t,
            "boxes": uncrop_boxes_xyxy(box_t, view.crop_box),
            "crop_boxes": crop_boxes,
        }

    def _merge_crops(self, parts: list[dict[str, torch.Tensor]], orig: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        data = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        if len(parts) > 1 and len(data["scores"]):  # prefer masks from smaller crops, as the reference
            keep = batched_nms(
                data["boxes"].float(),
                1 / box_area(data["crop_boxes"]),
                torch.zeros_like(data["boxes"][:, 0]),
                iou_threshold=self.settings.crop_nms_thresh,
            )
            data = {k: v[keep] for k, v in data.items()}
        return data["masks"].cpu().numpy(), data["scores"].float().cpu().numpy()


def _bucket_sizes(cap: int) -> list[int]:
    """Batch sizes a compiled decoder sees: ``cap`` / 4, ``cap`` / 2 and ``cap`` (three compilations)."""
    return sorted({max(1, cap // 4), max(1, cap // 2), cap})


def reference_generator(model: torch.nn.Module, settings: AMGSettings, points_per_batch: int = 64):  # noqa: ANN201
    """The reference: segment-anything-hq's ``SamAutomaticMaskGenerator`` with the same settings."""
    from segment_anything_hq import SamAutomaticMaskGenerator

    return SamAutomaticMaskGenerator(
        model,
        points_per_side=settings.points_per_side,
        points_per_batch=points_per_batch,
        pred_iou_thresh=settings.pred_iou_thresh,
        stability_score_thresh=settings.stability_score_thresh,
        stability_score_offset=settings.stability_score_offset,
        box_nms_thresh=settings.box_nms_thresh,
        crop_n_layers=settings.crop_n_layers,
        crop_nms_thresh=settings.crop_nms_thresh,
        crop_overlap_ratio=settings.crop_overlap_ratio,
        crop_n_points_downscale_factor=settings.crop_n_points_downscale_factor,
    )


def agreement(ours: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Match each reference mask to our mask of highest IoU: counts and matched IoUs."""
    n_ref, n_ours = len(reference), len(ours)
    if n_ref == 0 or n_ours == 0:
        return {"reference": n_ref, "ours": n_ours, "min_iou": float(n_ref == n_ours), "mean_iou": float(n_ref == n_ours)}
    a = torch.as_tensor(reference.reshape(n_ref, -1), dtype=torch.float32)
    b = torch.as_tensor(ours.reshape(n_ours, -1), dtype=torch.float32)
    inter = a @ b.t()
    union = a.sum(1, keepdim=True) + b.sum(1)[None] - inter
    best = (inter / union.clamp(min=1)).max(dim=1).values
    return {"reference": n_ref, "ours": n_ours, "min_iou": best.min().item(), "mean_iou": best.mean().item()}
