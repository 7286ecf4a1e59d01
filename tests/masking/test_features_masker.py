"""The features masker: regions from a checkpoint's own feature maps (k-means, connected components)."""

import numpy as np
import pytest
import torch

from masking.maskers import MaskerConfig, regions_of
from masking.maskers.features import FeaturesMasker, kmeans
from selfsup.backbone import resnet18


def checkpoint(tmp_path, stem="cifar", width=8):
    """A checkpoint in ``Pretraining.save``'s layout: config plus the method module's state (backbone.* keys)."""
    torch.manual_seed(0)
    backbone, _ = resnet18(width, stem)
    state = {"config": {"backbone_width": width, "stem": stem}, "model": {f"backbone.{k}": v for k, v in backbone.state_dict().items()}}
    path = tmp_path / "checkpoint.pt"
    torch.save(state, path)
    return str(path)


def test_kmeans_separates_two_clouds():
    x = torch.cat([torch.zeros(20, 3), torch.ones(30, 3) * 5]) + torch.randn(50, 3) * 0.1
    labels = kmeans(x, 2)
    assert len(set(labels[:20].tolist())) == 1 and len(set(labels[20:].tolist())) == 1 and labels[0] != labels[-1]


def test_feature_clusters_become_connected_regions_at_image_size(tmp_path):
    masker = FeaturesMasker(checkpoint(tmp_path), clusters=2, grid=8)
    image = np.zeros((48, 64, 3), np.uint8)
    assert masker(image, "x.png").masks.shape[1:] == (48, 64)  # real backbone, image resolution

    def two_halves_and_a_corner(x):  # features: left half one vector, right half another, and a
        h, w = x.shape[-2] // masker.stride, x.shape[-1] // masker.stride  # corner like the left half
        f = torch.zeros(1, 4, h, w)
        f[:, 0, :, : w // 2] = 1
        f[:, 1, :, w // 2 :] = 1
        f[:, 0, : h // 4, w - w // 4 :], f[:, 1, : h // 4, w - w // 4 :] = 1, 0
        return f

    masker._feature_map = two_halves_and_a_corner
    image = np.zeros((64, 64, 3), np.uint8)  # an 8 x 8 feature map: the corner is 2 x 2 cells, 16 x 16 px
    proposals = masker(image, "x.png")
    assert (proposals.masks.sum(0) == 1).all()  # components of a clustering partition the image
    assert sorted(int(m.sum()) for m in proposals.masks) == sorted([64 * 32, 16 * 16, 64 * 32 - 16 * 16])
    regions = regions_of(masker, MaskerConfig("features", {"checkpoint": "x"}, min_area=500), image, "x.png")
    assert sorted(regions.boxes.tolist()) == [[0, 0, 32, 64], [32, 0, 64, 64]]  # the corner is under min_area


def test_bad_parameters_and_checkpoints_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="clusters must be >= 2"):
        FeaturesMasker(checkpoint(tmp_path), clusters=1)
    with pytest.raises(ValueError, match="layer must be 1, 2, 3 or 4"):
        FeaturesMasker(checkpoint(tmp_path), layer=5)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FeaturesMasker(str(tmp_path / "none.pt"))
    torch.save({"config": {}, "model": {}}, tmp_path / "empty.pt")
    with pytest.raises(ValueError, match="no backbone"):
        FeaturesMasker(str(tmp_path / "empty.pt"))


def test_layer_picks_the_resnet_stage_whose_map_is_clustered(tmp_path):
    """ResNet18's stages halve the map from layer 2 on: the CIFAR stem's strides are 1, 2, 4, 8, and
    the stage's width is the clustered vector's length (8, 16, 32, 64 at width 8)."""
    path = checkpoint(tmp_path)
    x = torch.zeros(1, 3, 32, 32)
    for layer, (stride, channels) in enumerate([(1, 8), (2, 16), (4, 32), (8, 64)], start=1):
        masker = FeaturesMasker(path, layer=layer)
        assert masker.stride == stride
        assert masker._feature_map(x).shape[1] == channels
        assert masker(np.zeros((32, 32, 3), np.uint8)).masks.shape[1:] == (32, 32)
