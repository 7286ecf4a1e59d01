"""Self-supervised pretraining and its evaluation, one run at a time: nothing about Ray or MLflow.

- ``methods/``: the registry of methods (SimCLR, SAMCLR = SimCLR on region views, MoCo v2, BYOL,
  DINO, SwAV, SCE, and ``frozen`` encoders), each with its settings and presets (lightly's benchmark,
  the paper's).
- ``views`` and ``augment``: each method's views (crops from ``masking.crops``, then photometric
  augmentations and normalisation as lightly's transforms make them).
- ``data/``: pretraining image folders, eval sets, and the ``input: gpu`` path (an image cache decoded
  once, crop boxes drawn by workers, views made in batches on the device).
- ``training``: the loop (cosine lr, AMP, NaN guard, exact resume, atomic checkpoints);
  ``evaluation``: KNN top-1 and the linear probe; ``backbone``: ResNet18 and its export;
  ``encoders`` and ``frozen``: frozen reference encoders evaluated like a run; ``statistics``: the
  numbers a report prints (means, sample std, paired differences with t-based intervals).

Layering: imports ``masking`` and ``samdata``; never ``orchestrator``, Ray or MLflow
(``tests/test_layering.py``).
"""
