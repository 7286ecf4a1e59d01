"""Our batched HQ-SAM generator gives the reference SamAutomaticMaskGenerator's masks.

Random vit_tiny weights (no checkpoint can be downloaded here), a small point grid and zero
thresholds so that many masks survive: the comparison is of the machinery, which is what we wrote.
"""

import numpy as np
import pytest
import torch
from skimage import data

from masking.hqsam_generator import AMGSettings, BatchedMaskGenerator, agreement, build_hqsam, reference_generator
from masking.hqsam_decoder import DecoderOptions, SplitHQDecoder
from masking.hqsam_encoder import FusedTinyViTAttention, FusedViTAttention, fused_attention
from masking.maskers import MaskerConfig, regions_of_batch


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_hqsam("vit_tiny", None, "cpu")


def images():
    return [np.ascontiguousarray(data.astronaut()[::4, ::4]), np.ascontiguousarray(data.coffee()[::4, ::4])]


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(
            AMGSettings(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=1.0),
            id="grid4-no-nms-two-images",
        ),
        # random weights predict IoUs of ~0.05-0.12: 0.08 drops some prompts before any upscaling
        pytest.param(
            AMGSettings(points_per_side=4, pred_iou_thresh=0.08, stability_score_thresh=0.0, box_nms_thresh=1.0),
            id="grid4-iou-filter",
        ),
        pytest.param(  # 5 encoder passes per image (one crop layer), on both sides
            AMGSettings(points_per_side=3, pred_iou_thresh=0.08, stability_score_thresh=0.0, crop_n_layers=1, crop_nms_thresh=1.0, box_nms_thresh=1.0),
            id="crop-layer",
        ),
    ],
)
@pytest.mark.slow  # HQ-SAM's encoder at 1024 px on the CPU
def test_batched_generator_matches_the_reference(model, settings):
    # two images for one case (batched encoder); one for the others (5 encoder passes per image with crops)
    imgs = images() if settings.pred_iou_thresh == 0 else images()[:1]
    ours = BatchedMaskGenerator(model, settings, image_batch=2, prompt_batch=7).generate(imgs)
    reference = reference_generator(model, settings, points_per_batch=5)
    for image, (masks, scores) in zip(imgs, ours):
        ref = reference.generate(image)
        ref_masks = np.stack([r["segmentation"] for r in ref])
        stats = agreement(masks, ref_masks)
        assert stats["reference"] >= 6, "the comparison needs many masks"
        assert stats["ours"] == stats["reference"], stats
        assert stats["min_iou"] >= 0.98, stats
        assert masks.shape[1:] == image.shape[:2] and masks.dtype == bool and scores.dtype == np.float32
        assert np.allclose(np.sort(scores), np.sort([r["predicted_iou"] for r in ref]), atol=1e-4)


@pytest.fixture(scope="module")
def decoder_inputs(model):
    """One image's encoder output and 5 point prompts, and the reference decoder's answer for them."""
    from segment_anything_hq.utils.transforms import ResizeLongestSide

    image = images()[0]
    t = ResizeLongestSide(model.image_encoder.img_size)
    with torch.no_grad():
        x = model.preprocess(torch.as_tensor(t.apply_image(image)).permute(2, 0, 1).float()[None])
        features, interm = model.image_encoder(x)
        pts = torch.as_tensor(t.apply_coords(np.array([[10, 10], [60, 30], [100, 120], [30, 90], [64, 64]], float), image.shape[:2]), dtype=torch.float32)
        sparse, dense = model.prompt_encoder(points=(pts[:, None], torch.ones(5, 1)), boxes=None, masks=None)
        pe = model.prompt_encoder.get_dense_pe()
        low_res, iou = model.mask_decoder(features, pe, sparse, dense, multimask_output=True, hq_token_only=False, interm_embeddings=interm)
    return (features, interm, pe, sparse, dense), (low_res[:, 0], iou[:, 0])


@pytest.mark.slow  # HQ-SAM's encoder at 1024 px on the CPU (decoder_inputs), then 4 decoders
@pytest.mark.parametrize("options", [DecoderOptions.none(), DecoderOptions(fold_hq=True, shared_layer0=False), DecoderOptions(fold_hq=False, shared_layer0=True), DecoderOptions()], ids=["none", "fold_hq", "shared_layer0", "all"])
def test_each_decoder_restructuring_gives_the_reference_decoders_logits(model, decoder_inputs, options):
    (features, interm, pe, sparse, dense), (ref_logits, ref_iou) = decoder_inputs
    decoder = SplitHQDecoder(model.mask_decoder, options)
    with torch.no_grad():
        hs, keys = decoder.tokens(features, pe, sparse, dense)
        iou, idx = decoder.heads(hs)
        logits = decoder.masks(hs, keys, idx, decoder.image_side(features, interm))
    assert torch.allclose(iou, ref_iou, atol=1e-5)
    assert logits.shape == ref_logits.shape
    assert torch.allclose(logits, ref_logits, atol=1e-3 * ref_logits.abs().max().item())
    assert ((logits > 0) == (ref_logits > 0)).float().mean() > 0.999


@pytest.mark.slow  # HQ-SAM's encoder at 1024 px on the CPU
def test_iou_first_computes_masks_only_for_prompts_above_the_threshold(model):
    image = images()[0]
    settings = AMGSettings(points_per_side=4, pred_iou_thresh=0.09, stability_score_thresh=0.0)
    generator = BatchedMaskGenerator(model, settings)
    seen_iou, mask_batches = [], []
    heads, masks = generator.decoder.heads, generator._masks

    def recording_heads(hs):
        out = heads(hs)
        seen_iou.append(out[0])
        return out

    def recording_masks(hs, *rest, **kw):
        mask_batches.append(len(hs))
        return masks(hs, *rest, **kw)

    generator.decoder.heads, generator._masks = recording_heads, recording_masks
    generator.generate([image])
    above = int((torch.cat(seen_iou) > 0.09).sum())
    assert 0 < above < 16, "the threshold must split the prompts for this test to mean anything"
    assert sum(mask_batches) == above


@pytest.mark.slow  # HQ-SAM's encoder at 1024 px on the CPU
def test_shared_layer0_refuses_prompts_with_different_dense_embeddings(model, decoder_inputs):
    (features, _, pe, sparse, dense), _ = decoder_inputs
    dense = dense.clone()
    dense[1] += 1
    with pytest.raises(ValueError, match="shared_layer0 needs the same dense prompt embedding"):
        SplitHQDecoder(model.mask_decoder).tokens(features, pe, sparse, dense)


@pytest.mark.slow  # HQ-SAM's encoder at 1024 px on the CPU
def test_default_nms_and_thresholds_agree_too(model):
    settings = AMGSettings(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    image = images()[0]
    masks, _ = BatchedMaskGenerator(model, settings).generate([image])[0]
    ref = np.stack([r["segmentation"] for r in reference_generator(model, settings).generate(image)])
    stats = agreement(masks, ref)
    assert stats["ours"] == stats["reference"] and stats["min_iou"] >= 0.98


@pytest.mark.slow  # HQ-SAM's encoder at 1024 px on the CPU
def test_masker_batches_and_selects_regions(model):
    config = MaskerConfig("hqsam", {"model_type": "vit_tiny", "points_per_side": 2, "pred_iou_thresh": 0.0,
                                    "stability_score_thresh": 0.0, "dtype": "float32", "device": "cpu"}, min_area=50)
    masker = config.build()
    regions = regions_of_batch(masker, config, images(), ["a.png", "b.png"])
    assert len(regions) == 2
    for r, image in zip(regions, images()):
        assert (r.areas >= 50).all()
        assert (r.boxes[:, 2] <= image.shape[1]).all() and (r.boxes[:, 3] <= image.shape[0]).all()


def test_checkpoint_errors_are_clear(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="hqsam: checkpoint .*nope.pth not found"):
        build_hqsam("vit_tiny", tmp_path / "nope.pth")
    with pytest.raises(ValueError, match="unknown model_type 'vit_x'"):
        build_hqsam("vit_x", None)
    good = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), good)
    loaded = build_hqsam("vit_tiny", good)
    key = next(iter(model.state_dict()))
    assert torch.equal(loaded.state_dict()[key], model.state_dict()[key])
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model": model.state_dict()}, wrapped)
    assert torch.equal(build_hqsam("vit_tiny", wrapped).state_dict()[key], model.state_dict()[key])
    bad = tmp_path / "other.pth"
    state = model.state_dict()
    state = {k: (v[:1] if v.ndim and v.shape[0] > 1 and i == 3 else v) for i, (k, v) in enumerate(state.items())}
    torch.save(state, bad)
    with pytest.raises(ValueError, match="does not match model_type vit_tiny .*1 mis-shaped"):
        build_hqsam("vit_tiny", bad)


def test_an_explicit_dtype_overridden_on_the_cpu_warns_naming_it(recwarn):
    from masking.maskers.hqsam import HQSAMMasker

    with pytest.warns(UserWarning, match="hqsam: dtype bfloat16 is overridden with float32 on the CPU"):
        masker = HQSAMMasker(model_type="vit_tiny", device="cpu", dtype="bfloat16", points_per_side=2)
    assert masker.generator.dtype == torch.float32
    recwarn.clear()
    HQSAMMasker(model_type="vit_tiny", device="cpu", points_per_side=2)  # the default: float32 on the CPU, silently
    assert not [w for w in recwarn if "dtype" in str(w.message)]


@pytest.mark.slow  # runs TinyViT's encoder at 1024 px
def test_fused_attention_gives_each_encoders_outputs_and_is_undone_on_exit(model):
    """SAM's ViT (decomposed relative positions, windowed and global blocks; random non-zero position
    tables so the bias matters) and TinyViT (vit_tiny's offset-bias table): the fused kernel's outputs
    match the reference attention's to float rounding, and the modules are the reference ones again after."""
    from segment_anything_hq.modeling.image_encoder import Attention, ImageEncoderViT

    torch.manual_seed(0)
    vit = ImageEncoderViT(img_size=128, patch_size=16, embed_dim=64, depth=2, num_heads=4, out_chans=32, use_rel_pos=True,
                          rel_pos_zero_init=False, window_size=4, global_attn_indexes=(1,)).eval()
    for module in vit.modules():
        if isinstance(module, Attention):
            torch.nn.init.normal_(module.rel_pos_h, std=0.5)
            torch.nn.init.normal_(module.rel_pos_w, std=0.5)
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        reference = vit(x)[0]
        with fused_attention(vit) as swapped:
            assert swapped == 2 and all(type(m) is FusedViTAttention for m in vit.modules() if isinstance(m, Attention))
            fused = vit(x)[0]
        assert not any(isinstance(m, FusedViTAttention) for m in vit.modules())
        assert torch.allclose(fused, reference, atol=1e-4) and not torch.equal(fused, torch.zeros_like(fused))
        image = torch.randn(1, 3, 1024, 1024)
        reference = model.image_encoder(image)[0]
        with fused_attention(model.image_encoder) as swapped:
            assert swapped > 0
            fused = model.image_encoder(image)[0]
    assert torch.allclose(fused, reference, atol=1e-4)
    assert not any(isinstance(m, FusedTinyViTAttention) for m in model.modules())


@pytest.mark.slow  # runs TinyViT's encoder at 1024 px
def test_the_generator_fuses_only_while_it_encodes_a_shared_model(model):
    """The reference generator can share our model: after ours has run, its attention is the reference's."""
    settings = AMGSettings(points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    generator = BatchedMaskGenerator(model, settings)
    assert generator.fuse_per_call
    seen = []
    handle = model.image_encoder.register_forward_hook(
        lambda module, args, out: seen.append(any(isinstance(m, FusedTinyViTAttention) for m in module.modules())))
    try:
        generator.generate([images()[0]])
    finally:
        handle.remove()
    assert seen == [True]
    assert not any(isinstance(m, FusedTinyViTAttention) for m in model.modules())
