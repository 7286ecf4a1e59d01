"""Prepare the datasets of the SAMCLR paper's tables under a data root, and check them.

``python -m orchestrator.data prepare NAME --root DIR [--source ARCHIVE_OR_DIR ...]`` extracts what
a sweep reads from the official archives (or downloads it through torchvision where that is
possible), converts instance annotations to the id PNGs of the ``ground_truth`` masker, and checks
the result against the official counts. ``python -m orchestrator.data check NAME --root DIR`` only
checks. Both exit with 0 when complete, 1 when something is missing, 2 on a user error.

One module per dataset (``cityscapes``, ``ade20k``, ``imagenette``, ``cifar10``, ``stl10``,
``fashion_mnist``), each holding its official counts in one constant and its ``prepare`` and
``check`` functions; ``registry`` names them. ``sources`` reads archives and folders safely,
``prepared`` holds what a prepared root is made of (atomic files, completion marker, the count
report), ``instance_masks`` writes id PNGs. Nothing here imports ray or mlflow; torchvision is
imported only to download or to read its recorded checksums.
"""


class DataError(Exception):
    """A user error (missing or wrong archive, unknown dataset): printed as one line, no traceback."""
