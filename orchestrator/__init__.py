"""The orchestrator: the only package that knows Ray and MLflow.

``python -m orchestrator.sweep experiments/demo.yaml`` reads a sweep file (``config``), plans the
work (``plan``), computes region stores with Ray Data (``region_stage``), runs a Ray Tune grid of
``selfsup`` pretraining trials (``trial``), tracks them in MLflow (``tracking``) and prints a
results table (``summary``).
"""
