"""HQ-SAM on CUDA in bf16 (the default there) gives the float32 reference generator's masks.

CUDA only (``pytest -m cuda``); random vit_tiny weights (no checkpoint can be downloaded), a small
grid and zero thresholds so that many masks survive and are compared.
"""

import numpy as np
import pytest
import torch
from skimage import data

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_hqsam_masker_defaults_to_bf16_on_cuda():
    from masking.maskers.hqsam import HQSAMMasker

    masker = HQSAMMasker(model_type="vit_tiny", device="cuda", compile=False, points_per_side=2)
    assert masker.generator.dtype == torch.bfloat16
    assert next(masker.generator.model.image_encoder.parameters()).dtype == torch.bfloat16


def test_bf16_masks_match_the_float32_reference_on_cuda():
    from masking.hqsam_generator import AMGSettings, BatchedMaskGenerator, agreement, build_hqsam, reference_generator

    torch.manual_seed(0)
    model = build_hqsam("vit_tiny", None, "cuda")
    settings = AMGSettings(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=1.0)
    images = [np.ascontiguousarray(data.astronaut()[::4, ::4]), np.ascontiguousarray(data.coffee()[::4, ::4])]
    ours = BatchedMaskGenerator(model, settings, dtype=torch.bfloat16, image_batch=2).generate(images)
    reference = reference_generator(model, settings)
    for image, (masks, _) in zip(images, ours):
        assert masks.dtype == bool and masks.shape[1:] == image.shape[:2]
        ref = np.stack([r["segmentation"] for r in reference.generate(image)])
        stats = agreement(masks, ref)
        # bf16 moves a few logits across 0 near mask edges: same masks up to a few edge pixels
        assert abs(stats["ours"] - stats["reference"]) <= 0.1 * stats["reference"], stats
        assert stats["mean_iou"] >= 0.9, stats
