"""Regions of images, and where a view's crop may lie: everything SAMCLR changes, nothing about training.

- ``maskers/``: candidate masks of an image (``felzenszwalb``, the offline default; ``ground_truth``,
  an oracle; ``hqsam``, the paper's HQ-SAM; ``features``, regions from a checkpoint's own features),
  each followed by the same coarsest-region selection and ``min_area`` filter (``regions``).
- ``hqsam_generator``, ``hqsam_encoder``, ``hqsam_decoder``: HQ-SAM's automatic mask generator,
  batched and restructured, giving the reference's masks.
- ``store``: a dataset's regions for one masker configuration, in crash-safe Parquet shards.
- ``crops``: the crop geometry, a random-resized crop inside a region's enlarged box (``c``) or the
  whole image.
- ``purity``: view-pair purity, how often both views of a pair show the same object, measured from
  instance masks before any training; ``preview``: regions, boxes and view pairs drawn in one PNG.

Layering: imports ``samdata`` only (and segment-anything-hq, scikit-image, torch); never ``selfsup``,
``orchestrator``, Ray or MLflow at import time (``tests/test_layering.py``).
"""
