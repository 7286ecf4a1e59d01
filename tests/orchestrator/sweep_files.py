"""Sweep files the tests share: a template edited for each test, and the smallest SimCLR-only sweep.

The tests' main tiny sweep (2 methods, a ground-truth masker) is ``tests.orchestrator.test_sweep.SWEEP``;
the one for planning and validation is ``tests.orchestrator.test_config.GOOD``."""

from __future__ import annotations


def edit(text: str, *replacements: tuple[str, str]) -> str:
    """``text`` with each (old, new) replaced; an ``old`` that is not in the text exactly once fails
    (a shared template changed under the test that edits it)."""
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} is in the template {text.count(old)} times, not once"
        text = text.replace(old, new)
    return text


TINY_SIMCLR = """\
name: {name}
datasets:
  scenes:
    root: {root}/data
    synthetic: {{scenes: {scenes}, scene_size: 32, object_size: [10, 14], objects_per_scene: [1, 2], eval_size: 16,
                num_classes: 2, eval_train_per_class: 4, eval_val_per_class: 2, clutter: 4}}
grid:
  method: [simclr]
  epochs: [{epochs}]
train: {{batch_size: 4, image_size: 16, backbone_width: 8, stem: cifar, workers: 0}}
eval:
  every: 1
  knn_k: 3
  linear_epochs: 1
  sets:
    shapes: {{dataset: scenes}}
seeds: {seeds}
resources: {resources}
tracking: {{uri: "sqlite:///{root}/mlflow.db", experiment: {name}}}
storage: {storage}
"""
"""SimCLR only, one seed per trial: 32 px scenes, 16 px views, the narrowest ResNet, a KNN every
epoch and a 1-epoch probe, no masker: what is left is the orchestration (the load test, the lost
node)."""
