"""Vision adapter: pretrained image classifiers and image-text models under rot90 and flips.

A thin layer over the core: it declares the image groups (:func:`image_symmetry`: C4, mirrors, D4
acting on ``(H, W)``, labels invariant) and where the λ-net's features come from, then calls
:class:`equirl.GroupAveraged`. ``pretrained`` and ``data`` hold loaders for real models and data
sets that install offline; their optional dependencies are imported only when used.
"""

from equirl.adapters.vision.adapter import (
    CLASSIFIER_PROXY_LOSSES,
    IMAGE_GROUPS,
    ImageEncoder,
    TextClassifierHead,
    encode_labels,
    equivariant_classifier,
    equivariant_zero_shot,
    image_symmetry,
    infer_feature_dim,
    zero_shot_classifier,
)

__all__ = [
    "CLASSIFIER_PROXY_LOSSES",
    "IMAGE_GROUPS",
    "ImageEncoder",
    "TextClassifierHead",
    "encode_labels",
    "equivariant_classifier",
    "equivariant_zero_shot",
    "image_symmetry",
    "infer_feature_dim",
    "zero_shot_classifier",
]
