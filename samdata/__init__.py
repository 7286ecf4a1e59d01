"""Datasets and the files they are made of: the lowest layer of S3SAMe (it imports no other package
of ours, nor torch, Ray or MLflow).

- **The paper's datasets.** ``python -m samdata prepare NAME --root DIR [--source ARCHIVE_OR_DIR ...]``
  extracts what a sweep reads from the official archives (or downloads it through torchvision where
  that is possible), converts instance annotations to the instance-mask format, and checks the
  result against the official counts; ``python -m samdata check NAME --root DIR`` only checks. Both
  exit with 0 when complete, 1 when something is missing, 2 on a user error. One module per dataset
  (``cityscapes``, ``ade20k``, ``imagenette``, ``cifar10``, ``stl10``, ``fashion_mnist``), each
  holding its official counts in one constant and its ``prepare`` and ``check`` functions;
  ``registry`` names them, ``sources`` reads archives and folders safely, ``prepared`` holds the
  completion marks and the count report. torchvision is imported only to download or to read its
  recorded checksums.
- **Generated datasets.** ``synthetic``: scenes of drawn shapes or of Fashion-MNIST photos
  (``fashion_items``) with their instance masks and a labelled single-object eval set, written once
  from a seed as ordinary files.
- **Formats and files.** ``instance_masks``: the instance-id PNG format every mask writer and reader
  uses; ``image_files``: which files are images, how one is decoded, what a broken one raises;
  ``storage``: local folders and URIs through pyarrow filesystems, and the one atomic writer.
"""


class DataError(Exception):
    """A user error (missing or wrong archive, unknown dataset): printed as one line, no traceback."""
