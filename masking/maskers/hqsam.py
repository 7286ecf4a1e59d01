"""HQ-SAM masker: the paper's masks (SAMCLR, Sec. 3), from segment-anything-hq's model.

One model per masker object (a Ray Data actor builds one in its constructor). ``engine="batched"``
(default) uses :class:`masking.hqsam_generator.BatchedMaskGenerator`, which gives the reference masks
faster; ``engine="reference"`` runs segment-anything-hq's ``SamAutomaticMaskGenerator`` itself.
The automatic-mask-generator settings are keyword arguments with the reference's defaults.

``dtype`` defaults to bfloat16 on a GPU and float32 on the CPU (half precision on a CPU is many
times slower); a half-precision ``dtype`` asked for explicitly on the CPU runs in float32 too, with
a warning naming it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from masking.hqsam_generator import AMGSettings, BatchedMaskGenerator, build_hqsam, reference_generator
from masking.maskers import Proposals

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ENGINES = ("batched", "reference")


class HQSAMMasker:
    def __init__(
        self,
        model_type: Literal["vit_tiny", "vit_b", "vit_l", "vit_h"] = "vit_h",
        checkpoint: str | Path | None = None,
        device: str = "auto",
        dtype: Literal["float32", "bfloat16", "float16"] | None = None,
        engine: Literal["batched", "reference"] = "batched",
        image_batch: int = 4,
        points_per_batch: int = 256,
        compile: bool | None = None,
        **amg: float,
    ):
        if dtype is not None and dtype not in DTYPES:
            raise ValueError(f"hqsam: unknown dtype {dtype!r}; known: {', '.join(DTYPES)}")
        if engine not in ENGINES:
            raise ValueError(f"hqsam: unknown engine {engine!r}; known: {', '.join(ENGINES)}")
        unknown = sorted(set(amg) - set(AMGSettings.__dataclass_fields__))
        if unknown:
            raise ValueError(f"hqsam: unknown setting(s) {', '.join(unknown)}; known: {', '.join(AMGSettings.__dataclass_fields__)}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cpu":
            if dtype not in (None, "float32"):
                warnings.warn(
                    f"hqsam: dtype {dtype} is overridden with float32 on the CPU (half precision there is many times slower)",
                    stacklevel=2,
                )
            dtype = "float32"  # half precision on CPU is many times slower (measured: bf16 TinyViT)
        dtype = dtype or "bfloat16"
        self.settings = AMGSettings(**amg)
        self.model = build_hqsam(model_type, checkpoint, device)
        self.engine = engine
        if engine == "batched":
            compile = device.startswith("cuda") if compile is None else compile  # default: on for GPUs
            self.generator = BatchedMaskGenerator(
                self.model, self.settings, DTYPES[dtype], image_batch, points_per_batch, compile=compile
            )
        else:
            self.generator = reference_generator(self.model, self.settings, points_per_batch)

    @staticmethod
    def extra_parameters() -> dict[str, tuple[Any, Any]]:
        """What ``**amg`` takes: the mask generator's settings (name -> (type, default))."""
        return {f.name: ({"int": int, "float": float}[f.type] if isinstance(f.type, str) else f.type, f.default) for f in fields(AMGSettings)}

    def batch(self, images: Sequence[np.ndarray], paths: Sequence[str]) -> list[Proposals]:
        if self.engine == "batched":
            return [Proposals(m, s) for m, s in self.generator.generate(list(images))]
        out = []
        for image in images:
            records = self.generator.generate(image)
            masks = np.stack([r["segmentation"] for r in records]) if records else np.zeros((0, *image.shape[:2]), bool)
            out.append(Proposals(masks, np.asarray([r["predicted_iou"] for r in records], np.float32)))
        return out

    def __call__(self, image: np.ndarray, path: str) -> Proposals:
        return self.batch([image], [path])[0]
