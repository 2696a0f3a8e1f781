"""The three standard deep-metric-learning benchmarks, read from their usual on-disk layouts.

Every paper in the field since Oh Song et al. (2016) reports Recall@K on the same three sets, each
split by class (the second half of the classes is never seen in training):

* **CUB-200-2011** (Wah, Branson, Welinder, Perona and Belongie, "The Caltech-UCSD Birds-200-2011
  Dataset", Caltech technical report CNS-TR-2011-001, 2011): 11,788 bird photographs, 200
  species; classes 1-100 train (5,864 images), 101-200 test (5,924).
* **Cars196** (Krause, Stark, Deng and Fei-Fei, "3D Object Representations for Fine-Grained
  Categorization", ICCV Workshop on 3D Representation and Recognition (3dRR), 2013): 16,185 car
  photographs, 196 make-model-year classes; classes 1-98 train (8,054), 99-196 test (8,131).
* **Stanford Online Products** (Oh Song, Xiang, Jegelka and Savarese, "Deep Metric Learning via
  Lifted Structured Feature Embedding", CVPR 2016): 120,053 eBay product photographs, 22,634
  products in 12 super-classes; the split is given by ``Ebay_train.txt`` (11,318 classes,
  59,551 images) and ``Ebay_test.txt`` (11,316 classes, 60,502 images).

None of them is downloaded here (their licences ask for a manual download); a missing file is a
:class:`~dmlkit.data.paths.DatasetNotFoundError` that lists the folders looked at, the layout
expected and where the dataset is published. ``root`` defaults to ``<data_dir>/<name>`` with
``<data_dir>`` as in :func:`dmlkit.data.paths.data_dir` (``$DMLKIT_DATA`` when set) and
``<name>`` one of ``cub200``, ``cars196``, ``sop``.

The loaders return an :class:`ImageFileDataset`: the images stay on disk and are opened with PIL on
each access, converted to RGB and passed through a transform, by default the ImageNet-style
pipeline of :func:`imagenet_transforms` (random resized crop and flip for training; resize and
centre crop for evaluation) that the benchmarks' published numbers use.
"""

from dmlkit.data.benchmarks import cars196, common, cub200, sop
from dmlkit.data.benchmarks.cars196 import load_cars196
from dmlkit.data.benchmarks.common import IMAGENET_MEAN, IMAGENET_STD, ImageFileDataset, imagenet_transforms
from dmlkit.data.benchmarks.cub200 import load_cub200
from dmlkit.data.benchmarks.sop import load_sop

__all__ = [
    *cars196.__all__,
    *common.__all__,
    *cub200.__all__,
    *sop.__all__,
]
