"""HQ-SAM's image encoders with PyTorch's fused attention: the same outputs, less memory traffic.

Both encoders segment-anything-hq ships compute attention as three steps: the score matrix
``q k^T`` (plus a positional bias), its softmax, and the product with ``v``, each a full
(batch x heads x N x N) tensor in memory. ``torch.nn.functional.scaled_dot_product_attention`` does
the same arithmetic in one fused kernel (flash or memory-efficient attention, on the GPU and the
CPU), the positional bias passed as an additive ``attn_mask``:

- ViT-B/L/H (``image_encoder.Attention``): SAM's decomposed relative positions (MViTv2,
  ``add_decomposed_rel_pos``): ``bias[q, k] = q . R_h[q_row, k_row] + q . R_w[q_col, k_col]``,
  computed from the unscaled query exactly as the reference does, then added to the scaled scores
  inside the kernel;
- TinyViT (``vit_tiny``, ``tiny_vit_sam.Attention``): its learned per-head bias table indexed by
  the (|dy|, |dx|) offset of each pair of positions.

``fused_attention(encoder)`` swaps these modules' classes for subclasses whose ``forward`` calls the
fused kernel (no weights copied, nothing else changed) and restores them on exit, so a model shared
with the reference generator stays the reference. Same inputs, same weights: outputs agree to
float rounding (``tests/masking/test_hqsam.py``). Compiling the encoder is the generator's
``compile`` option.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from segment_anything_hq.modeling.image_encoder import Attention as ViTAttention
from segment_anything_hq.modeling.image_encoder import get_rel_pos
from segment_anything_hq.modeling.tiny_vit_sam import Attention as TinyViTAttention


class FusedViTAttention(ViTAttention):
    """``image_encoder.Attention`` with the relative positions as the fused kernel's additive mask."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, _ = x.shape
        qkv = self.qkv(x).reshape(B, H * W, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, heads, H*W, C)
        bias = None
        if self.use_rel_pos:
            rh, rw = get_rel_pos(H, H, self.rel_pos_h), get_rel_pos(W, W, self.rel_pos_w)
            r_q = q.reshape(B, self.num_heads, H, W, -1)
            rel_h = torch.einsum("bnhwc,hkc->bnhwk", r_q, rh.to(q.dtype))
            rel_w = torch.einsum("bnhwc,wkc->bnhwk", r_q, rw.to(q.dtype))
            bias = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(B, self.num_heads, H * W, H * W)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        x = x.view(B, self.num_heads, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1)
        return self.proj(x)


class FusedTinyViTAttention(TinyViTAttention):
    """``tiny_vit_sam.Attention`` with its offset-bias table as the fused kernel's additive mask."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, _ = x.shape
        x = self.norm(x)
        q, k, v = self.qkv(x).view(B, N, self.num_heads, -1).split([self.key_dim, self.key_dim, self.d], dim=3)
        q, k, v = q.permute(0, 2, 1, 3), k.permute(0, 2, 1, 3), v.permute(0, 2, 1, 3)
        bias = self.attention_biases[:, self.attention_bias_idxs] if self.training else self.ab
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=self.scale)
        return self.proj(x.transpose(1, 2).reshape(B, N, self.dh))


FUSED = {ViTAttention: FusedViTAttention, TinyViTAttention: FusedTinyViTAttention}


def swap_to_fused(encoder: torch.nn.Module) -> list[tuple[torch.nn.Module, type]]:
    """Give every attention module of ``encoder`` its fused class, in place; returns (module, old
    class) pairs for ``restore``. The number of modules swapped is ``len`` of the result."""
    swapped = []
    for module in encoder.modules():
        fused = FUSED.get(type(module))
        if fused is not None:
            swapped.append((module, type(module)))
            module.__class__ = fused
    return swapped


def restore(swapped: list[tuple[torch.nn.Module, type]]) -> None:
    for module, cls in swapped:
        module.__class__ = cls


@contextlib.contextmanager
def fused_attention(encoder: torch.nn.Module, enabled: bool = True) -> Iterator[int]:
    """Within the block, ``encoder``'s attention runs fused; yields how many modules were swapped."""
    swapped = swap_to_fused(encoder) if enabled else []
    try:
        yield len(swapped)
    finally:
        restore(swapped)
