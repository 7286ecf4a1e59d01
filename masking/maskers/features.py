"""Features masker: regions from a pretraining checkpoint's own feature maps, with no external weights.

In the spirit of unsupervised segmentation by clustering self-supervised features (e.g. Hamilton et
al., "STEGO", ICLR 2022; Simeoni et al., "LOST", BMVC 2021, which use DINO's features): the image
goes through the checkpoint's backbone (``selfsup.backbone.resnet18`` as the trial built it, from
the checkpoint's ``config``) up to its last feature map (or stage ``layer``'s), the L2-normalised feature vectors are
clustered with k-means (``clusters`` centres, k-means++ seeding from a fixed seed, ``iterations``
Lloyd steps), the cluster map is upsampled (nearest) to the image, and every connected component of
every cluster is a candidate mask. The usual coarsest-region selection and ``min_area`` follow
(``masking.maskers.regions_of``).

The image is resized so that the last feature map's short side has ``grid`` cells (the backbone's
stride is measured once), since a 64 px scene through ResNet18's ImageNet stem gives only 2 x 2,
and normalised as the trial normalised its views (``selfsup.augment``'s ImageNet mean and std).
Checkpoints are those ``selfsup.training.Pretraining.save`` writes (``config`` and ``model``, whose
``backbone.*`` keys hold the backbone); they are our own files, read with ``weights_only=False``.
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from masking.maskers import Proposals
from samdata.storage import location


def kmeans(x: torch.Tensor, k: int, iterations: int = 20, seed: int = 0) -> torch.Tensor:
    """Cluster labels (N,) of rows of ``x`` (N, D): k-means++ seeding, then Lloyd steps."""
    g = torch.Generator().manual_seed(seed)
    n = len(x)
    k = min(k, n)
    centres = [x[torch.randint(n, (1,), generator=g)].squeeze(0)]
    for _ in range(1, k):
        d = torch.cdist(x, torch.stack(centres)).min(1).values ** 2
        if d.sum() <= 0:
            break
        centres.append(x[torch.multinomial(d / d.sum(), 1, generator=g)].squeeze(0))
    c = torch.stack(centres)
    for _ in range(iterations):
        labels = torch.cdist(x, c).argmin(1)
        for j in range(len(c)):
            members = x[labels == j]
            if len(members):
                c[j] = members.mean(0)
    return torch.cdist(x, c).argmin(1)


class FeaturesMasker:
    """Regions from k-means on a checkpoint's last feature map, split into connected components.

    checkpoint: a pretraining checkpoint (``Pretraining.save``), a path or a URI (``samdata.storage``:
    a trial's checkpoint on a sweep's shared storage, ``orchestrator.rounds``). clusters: k of k-means. grid: short
    side of the feature map, in cells. iterations: Lloyd steps. device: ``cpu``, ``cuda`` or ``auto``.
    layer: the ResNet stage (1-4) whose output is clustered (4, the last, by default; an earlier
    stage keeps more resolution at the trial's own image scale).
    """

    def __init__(self, checkpoint: str, clusters: int = 4, grid: int = 16, iterations: int = 20, device: str = "cpu", layer: int = 4):
        self.check_params({"clusters": clusters, "grid": grid, "layer": layer})
        from selfsup.augment import IMAGENET_MEAN, IMAGENET_STD
        from selfsup.backbone import resnet18

        file = location(checkpoint)
        if not file.is_file():
            raise FileNotFoundError(f"features masker: checkpoint {checkpoint} does not exist")
        state = torch.load(io.BytesIO(file.read_bytes()), map_location="cpu", weights_only=False)
        config = state.get("config", {})
        backbone, _ = resnet18(int(config.get("backbone_width", 64)), str(config.get("stem", "imagenet")))
        weights = {k[len("backbone.") :]: v for k, v in state["model"].items() if k.startswith("backbone.")}
        if not weights:
            raise ValueError(f"features masker: checkpoint {checkpoint} holds no backbone.* weights")
        backbone.load_state_dict(weights)
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
        self.backbone = backbone.eval().to(self.device)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device)[:, None, None]
        self.std = torch.tensor(IMAGENET_STD, device=self.device)[:, None, None]
        self.clusters, self.grid, self.iterations, self.layer = int(clusters), int(grid), int(iterations), int(layer)
        with torch.no_grad():
            self.stride = 64 // self._feature_map(torch.zeros(1, 3, 64, 64, device=self.device)).shape[-1]

    @staticmethod
    def check_params(params: dict) -> None:
        """Value checks (ValueError, one line) without loading anything."""
        for key in ("clusters", "grid"):
            if key in params and int(params[key]) < 2:
                raise ValueError(f"features masker: {key} must be >= 2, got {params[key]}")
        if "layer" in params and int(params["layer"]) not in (1, 2, 3, 4):
            raise ValueError(f"features masker: layer must be 1, 2, 3 or 4 (the ResNet stage), got {params['layer']}")

    def _feature_map(self, x: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        for stage in (b.layer1, b.layer2, b.layer3, b.layer4)[: self.layer]:
            x = stage(x)
        return x

    @torch.no_grad()
    def __call__(self, image: np.ndarray, path: str = "") -> Proposals:
        image = np.asarray(image)[..., :3]
        height, width = image.shape[:2]
        scale = self.grid * self.stride / min(height, width)
        size = (max(self.stride, round(height * scale)), max(self.stride, round(width * scale)))
        x = torch.tensor(image, dtype=torch.float32, device=self.device).permute(2, 0, 1)[None] / 255
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        x = (x - self.mean) / self.std
        features = F.normalize(self._feature_map(x)[0], dim=0)  # (C, h, w)
        h, w = features.shape[1:]
        labels = kmeans(features.reshape(len(features), -1).T.float().cpu(), self.clusters, self.iterations).reshape(h, w).numpy()
        rows = (np.arange(height) * h // height).clip(0, h - 1)
        cols = (np.arange(width) * w // width).clip(0, w - 1)
        full = labels[rows[:, None], cols[None, :]]
        masks = []
        for j in np.unique(full):
            components, n = ndimage.label(full == j)
            masks += [components == i for i in range(1, n + 1)]
        if not masks:
            return Proposals(np.zeros((0, height, width), bool), np.zeros(0, np.float32))
        return Proposals(np.stack(masks), np.ones(len(masks), np.float32))
