"""HQ-SAM's mask decoder (``MaskDecoderHQ``), split so that per-prompt work follows the IoU filter.

Same weights and the same arithmetic as segment-anything-hq's ``MaskDecoderHQ.forward`` with
``multimask_output=True, hq_token_only=False`` (what ``SamAutomaticMaskGenerator`` calls), in
three calls instead of one:

1. :meth:`SplitHQDecoder.tokens`: the two-way transformer on every prompt;
2. :meth:`SplitHQDecoder.heads`: the IoU head (and the hypernetwork MLPs) on the output tokens. The
   predicted IoU reads only the IoU token, so the caller can drop prompts below ``pred_iou_thresh``
   before any upscaling;
3. :meth:`SplitHQDecoder.masks`: upscaling, HQ-SAM's mask-feature convolutions and the mask
   product, on the surviving prompts only.

What each :class:`DecoderOptions` switch changes (each is measured on its own by ``bench/masks.py``):

- ``fold_hq``: HQ-SAM's mask is ``v_hq . (conv2(g(conv1(up))) + hq_features)`` with ``conv2`` a
  3x3 convolution 64 -> 32 at 256 x 256 and ``v_hq`` the HQ token's hypernetwork vector. The product
  with ``v_hq`` is linear, so it folds into ``conv2``: one 3x3 convolution 64 -> 1 per prompt with
  weight ``v_hq^T W2`` (:func:`_per_prompt_conv3x3`), plus ``v_hq . hq_features`` computed
  without repeating ``hq_features`` per prompt. Only the SAM mask the reference keeps (highest
  predicted IoU of the three multimask outputs) is multiplied out, not all four.
- ``shared_layer0``: the first two-way block's image side does not depend on the prompt (points
  give the same dense embedding, ``no_mask_embed``): its key/value projections of the image and
  the image's query projection for image-to-token attention run once per image, and all prompts'
  queries attend to the shared keys in one call, instead of repeating the image embedding per prompt.

With every switch off this is the reference decoder's arithmetic in the reference's order (the
``baseline`` of the bench). The token heads (IoU head, hypernetwork MLPs) always run in float32: they
are tiny, and the IoU threshold comparison is where half-precision rounding would flip masks.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ContextManager

import torch
import torch.nn.functional as F
from torch import nn

Timer = Callable[[str], ContextManager]


def untimed(name: str) -> ContextManager:
    """The default timer: no timing."""
    return contextlib.nullcontext()


@dataclass(frozen=True)
class DecoderOptions:
    """Which restructurings of the decoder run (see the module docstring); all on by default."""

    iou_first: bool = True
    """Upscaling, HQ path and mask product only on prompts above ``pred_iou_thresh``."""
    fold_hq: bool = True
    shared_layer0: bool = True

    @classmethod
    def none(cls) -> DecoderOptions:
        return cls(iou_first=False, fold_hq=False, shared_layer0=False)


class SplitHQDecoder(nn.Module):
    """A ``MaskDecoderHQ`` (weights shared, not copied) run in the three steps above."""

    def __init__(self, decoder: nn.Module, options: DecoderOptions = DecoderOptions()):
        super().__init__()
        self.decoder = decoder
        self.options = options
        # float32 token heads: a copy, so a bf16 decoder keeps an exact IoU head
        self.iou_head = copy.deepcopy(decoder.iou_prediction_head).float()
        self.hyper = copy.deepcopy(decoder.output_hypernetworks_mlps).float()
        self.hf_mlp = copy.deepcopy(decoder.hf_mlp).float()

    def image_side(self, features: torch.Tensor, interm: list[torch.Tensor]) -> torch.Tensor:
        """HQ-SAM's per-image features (1, C/8, 4h, 4w): once per image, not once per decoder call."""
        d = self.decoder
        return d.embedding_encoder(features) + d.compress_vit_feat(interm[0].permute(0, 3, 1, 2))

    def tokens(
        self,
        features: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
        timer: Timer = untimed,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The two-way transformer: output tokens (B, T, C) and the image side (B, hw, C) per prompt."""
        d = self.decoder
        t = d.transformer
        out = torch.cat([d.iou_token.weight, d.mask_tokens.weight, d.hf_token.weight], dim=0)
        point_embedding = torch.cat((out.unsqueeze(0).expand(sparse.size(0), -1, -1), sparse), dim=1)
        key_pe = image_pe.flatten(2).permute(0, 2, 1)  # (1, hw, C): broadcast, never repeated
        queries = point_embedding
        first = 0
        if self.options.shared_layer0:
            checkable = not torch.compiler.is_compiling()  # a data-dependent branch breaks the graph
            if checkable and dense.shape[0] > 1 and not torch.equal(dense[:1].expand_as(dense), dense):
                raise ValueError("hqsam: shared_layer0 needs the same dense prompt embedding for every prompt (points, no masks)")
            with timer("transformer layer 0"):
                keys0 = (features + dense[:1]).flatten(2).permute(0, 2, 1)  # (1, hw, C)
                queries, keys = _shared_first_block(t.layers[0], queries, keys0, point_embedding, key_pe)
            first = 1
        else:
            with timer("transformer layer 0"):  # the reference's repeat is part of the per-prompt cost
                src = torch.repeat_interleave(features, sparse.size(0), dim=0) + dense
                keys = src.flatten(2).permute(0, 2, 1)
        for i, layer in enumerate(t.layers):
            if i < first:
                continue
            with timer(f"transformer layer {i}"):
                queries, keys = layer(queries=queries, keys=keys, query_pe=point_embedding, key_pe=key_pe)
        with timer("final attention"):
            q = queries + point_embedding
            k = keys + key_pe
            queries = t.norm_final_attn(queries + t.final_attn_token_to_image(q=q, k=k, v=keys))
        return queries, keys

    def heads(self, hs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted IoU (B,) float32 of the best of the three multimask outputs, and which one (B,)."""
        iou = self.iou_head(hs[:, 0].float())[:, 1 : self.decoder.num_mask_tokens - 1]
        best, idx = iou.max(dim=1)
        return best, idx + 1  # mask-token index (0 is the single-mask output)

    def masks(
        self,
        hs: torch.Tensor,
        keys: torch.Tensor,
        idx: torch.Tensor,
        hq_features: torch.Tensor,
        timer: Timer = untimed,
    ) -> torch.Tensor:
        """Low-resolution logits (B, 4h, 4w) of the kept mask: SAM's chosen mask plus HQ-SAM's."""
        d = self.decoder
        b, hw, c = keys.shape
        h = w = math.isqrt(hw)
        with timer("upscaling"):
            up = d.output_upscaling(keys.transpose(1, 2).reshape(b, c, h, w))
        dtype = up.dtype
        n = d.num_mask_tokens  # iou-less tokens: 4 SAM mask tokens + 1 HQ token
        with timer("token heads"):
            tokens = hs[:, 1 : 1 + n].float()
            rows = torch.arange(b, device=hs.device)
            if self.options.fold_hq:
                chosen = torch.stack([mlp(tokens[:, i]) for i, mlp in enumerate(self.hyper)], dim=1)[rows, idx]
                v_sam = chosen
            else:
                v_sam = torch.stack([mlp(tokens[:, i]) for i, mlp in enumerate(self.hyper)], dim=1)
            v_hq = self.hf_mlp(tokens[:, n - 1])
        mf = d.embedding_maskfeature  # conv1, LayerNorm2d, GELU, conv2
        if self.options.fold_hq:
            with timer("HQ path"):
                inner = mf[2](mf[1](mf[0](up)))  # (B, 64, 4h, 4w)
            with timer("mask products"):
                conv2 = mf[3]
                weight = torch.einsum("bo,oikl->bikl", v_hq, conv2.weight.float()).to(dtype)  # (B, 64, 3, 3)
                bias = v_hq @ conv2.bias.float()  # (B,)
                _, ci, hh, ww = inner.shape
                hq = _per_prompt_conv3x3(inner, weight).reshape(b, hh * ww)
                feats = hq_features.reshape(hq_features.shape[1], hh * ww)
                logits = (
                    torch.einsum("bc,bcp->bp", v_sam.to(dtype), up.reshape(b, -1, hh * ww))
                    + hq
                    + v_hq.to(dtype) @ feats
                    + bias.to(dtype)[:, None]
                )
                return logits.reshape(b, hh, ww)
        with timer("HQ path"):
            up_hq = mf(up) + hq_features.repeat(b, 1, 1, 1)
        with timer("mask products"):
            _, cu, hh, ww = up.shape
            masks_sam = (v_sam[:, : n - 1].to(dtype) @ up.reshape(b, cu, hh * ww)).reshape(b, n - 1, hh, ww)
            masks_hq = (v_hq[:, None].to(dtype) @ up_hq.reshape(b, cu, hh * ww)).reshape(b, hh, ww)
            return masks_sam[rows, idx] + masks_hq


def _per_prompt_conv3x3(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Prompt b's 3x3 convolution (padding 1) of ``x[b]`` (C, H, W) with ``weight[b]`` (C, 3, 3) -> (B, H, W).

    The channels are contracted first (one batched matrix product to 9 planes per prompt), then
    the 9 shifted planes are summed: measured on one CPU thread at 64 x 256 x 256, 6 ms per prompt
    against 16 ms for the same thing as a grouped ``conv2d`` and 44 ms for the unfolded 64 -> 32
    convolution and product.
    """
    b, c, h, w = x.shape
    planes = torch.bmm(weight.reshape(b, c, 9).transpose(1, 2), x.reshape(b, c, h * w)).reshape(b, 3, 3, h, w)
    planes = F.pad(planes, (1, 1, 1, 1))
    out = planes[:, 0, 0, :h, :w].clone()
    for dy in range(3):
        for dx in range(3):
            if dy or dx:
                out += planes[:, dy, dx, dy : dy + h, dx : dx + w]
    return out


def _shared_first_block(
    block: nn.Module, queries: torch.Tensor, keys0: torch.Tensor, query_pe: torch.Tensor, key_pe: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``TwoWayAttentionBlock.forward`` with ``skip_first_layer_pe``, the image side (1, hw, C) shared.

    Same operations as segment-anything-hq's block; only the image-side projections are computed
    once and broadcast, and the B prompts' queries attend to the shared keys in one batch.
    """
    b, t, _ = queries.shape
    queries = block.norm1(block.self_attn(q=queries, k=queries, v=queries))
    # token -> image: keys and values are the same for every prompt
    a = block.cross_attn_token_to_image
    heads = a.num_heads
    k = _heads(a.k_proj(keys0 + key_pe), heads)  # (1, H, hw, d)
    v = _heads(a.v_proj(keys0), heads)
    q = _heads(a.q_proj(queries + query_pe).reshape(1, b * t, -1), heads)  # all prompts' tokens as one query set
    attn = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1]), dim=-1)
    out = a.out_proj(_unheads(attn @ v).reshape(b, t, -1))
    queries = block.norm2(queries + out)
    queries = block.norm3(queries + block.mlp(queries))
    # image -> token: the image's queries are shared, the prompt tokens are keys and values
    a = block.cross_attn_image_to_token
    q = _heads(a.q_proj(keys0 + key_pe), heads)  # (1, H, hw, d)
    k = _heads(a.k_proj(queries + query_pe), heads)  # (B, H, T, d)
    v = _heads(a.v_proj(queries), heads)
    # one product of the shared image queries with every prompt's tokens: (H, hw, B*T)
    logits = q[0] @ k.permute(1, 3, 0, 2).reshape(heads, k.shape[-1], b * t)
    attn = torch.softmax(logits.reshape(heads, -1, b, t) / math.sqrt(q.shape[-1]), dim=-1)
    out = torch.einsum("hnbt,bhtd->bhnd", attn, v)
    keys = block.norm4(keys0 + a.out_proj(_unheads(out)))
    return queries, keys


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, c = x.shape
    return x.reshape(b, n, heads, c // heads).transpose(1, 2)


def _unheads(x: torch.Tensor) -> torch.Tensor:
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)
