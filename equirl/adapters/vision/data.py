"""Real labelled images that install offline, and the random rot90 test sets of the paper.

- Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (IDX files under
  ``/usr/share/datasets/fashion-mnist/``), or scikit-learn's 8x8 digits as the fallback;
- real photographs shipped with scikit-image and scikit-learn;
- :func:`random_group_transform`: each image moved by a random group element (the "rot90 test set").
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from equirl.symmetry import Symmetry

__all__ = [
    "FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "ImageDataset",
    "read_idx",
    "load_fashion_mnist",
    "load_digits",
    "load_image_dataset",
    "random_group_transform",
    "load_photos",
]

FASHION_MNIST_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


@dataclass
class ImageDataset:
    """A labelled image data set: ``x_train [N, 1, H, W]`` float in ``[0, 1]``, ``y_train [N]`` long, same for test."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:  # type: ignore[operator]
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(root: str | os.PathLike[str] | None = None) -> ImageDataset:
    """Fashion-MNIST (60,000 train / 10,000 test, 28x28 grey) from Debian's ``dataset-fashion-mnist``."""
    root = Path(root) if root is not None else FASHION_MNIST_DIR
    files = {
        k: root / f"{k}-idx{3 if 'images' in k else 1}-ubyte.gz"
        for k in ("train-images", "train-labels", "t10k-images", "t10k-labels")
    }
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST files not found: {missing}. Install Debian's package with "
            "`apt-get install dataset-fashion-mnist` (or set FASHION_MNIST_DIR), or use dataset='digits'."
        )

    def images(key: str) -> torch.Tensor:
        return torch.from_numpy(read_idx(files[key]).astype(np.float32) / 255.0).unsqueeze(1)

    def labels(key: str) -> torch.Tensor:
        return torch.from_numpy(read_idx(files[key]).astype(np.int64))

    return ImageDataset(
        "fashion-mnist",
        images("train-images"),
        labels("train-labels"),
        images("t10k-images"),
        labels("t10k-labels"),
        FASHION_MNIST_CLASSES,
    )


def load_digits(test_fraction: float = 0.3, seed: int = 0) -> ImageDataset:
    """scikit-learn's 1,797 8x8 digits, split at random into train and test."""
    from equirl.adapters.vision.pretrained import require

    datasets = require("sklearn.datasets", "scikit-learn", "The digits data set")
    d = datasets.load_digits()
    x = torch.from_numpy((d.images / 16.0).astype(np.float32)).unsqueeze(1)
    y = torch.from_numpy(d.target.astype(np.int64))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(test_fraction * len(y)))
    te, tr = perm[:n_test], perm[n_test:]
    return ImageDataset("digits", x[tr], y[tr], x[te], y[te], tuple(str(i) for i in range(10)))


def load_image_dataset(name: str = "fashion-mnist") -> ImageDataset:
    """``"fashion-mnist"`` or ``"digits"``."""
    if name == "fashion-mnist":
        return load_fashion_mnist()
    if name == "digits":
        return load_digits()
    raise ValueError(f"Unknown data set {name!r}; choose 'fashion-mnist' or 'digits'.")


def random_group_transform(
    x: torch.Tensor, symmetry: Symmetry, seed: int = 0, chunk: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each image ``x [N, ...]`` by an element drawn uniformly from the group.

    :return: ``(g·x [N, ...], g [N] long)``.
    """
    g = torch.randint(symmetry.order, (x.shape[0],), generator=torch.Generator().manual_seed(seed))
    out = torch.empty_like(x)
    for i in range(0, x.shape[0], chunk):
        orbit = symmetry.input_action.orbit(x[i : i + chunk])  # [G, n, ...]
        idx = g[i : i + chunk]
        out[i : i + chunk] = orbit[idx, torch.arange(idx.shape[0])]
    return out, g


def load_photos(size: int = 224) -> dict[str, torch.Tensor]:
    """Real colour photographs shipped with scikit-image and scikit-learn, centre-cropped and resized.

    :return: name -> ``[3, size, size]`` float in ``[0, 1]``.
    """
    from PIL import Image

    from equirl.adapters.vision.pretrained import require

    skdata = require("skimage.data", "scikit-image", "The sample photographs")
    sk_datasets = require("sklearn.datasets", "scikit-learn", "The sample photographs")
    arrays: dict[str, np.ndarray] = {}
    for name in ("chelsea", "coffee", "rocket", "astronaut", "motorcycle_left", "camera", "clock", "horse"):
        fn = getattr(skdata, "stereo_motorcycle" if name == "motorcycle_left" else name, None)
        if fn is None:
            continue
        try:
            img = fn()
        except Exception:  # noqa: BLE001 - an image that needs a download is skipped
            continue
        if name == "motorcycle_left":
            img = img[0]
        arrays[name] = np.asarray(img)
    samples = sk_datasets.load_sample_images()
    for fname, img in zip(samples.filenames, samples.images, strict=True):
        arrays[Path(fname).stem] = np.asarray(img)
    out: dict[str, torch.Tensor] = {}
    for name, a in arrays.items():
        if a.dtype == bool:
            a = a.astype(np.uint8) * 255
        if a.ndim == 2:
            a = np.stack([a] * 3, -1)
        a = a[..., :3]
        h, w = a.shape[:2]
        s = min(h, w)
        a = a[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
        im = Image.fromarray(a.astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
        out[name] = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()
    return out
