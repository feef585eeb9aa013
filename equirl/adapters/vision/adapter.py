"""The vision adapter: image classifiers and image-text models under rot90 and flips.

Everything here *declares* things (the image groups, the invariant output, where the features
that the λ-net reads come from) and hands them to the core's :class:`equirl.GroupAveraged`;
there is no averaging, equizero or λ-equitune code in this module.

Image groups (acting on the last two dims ``(H, W)`` of ``[B, C, H, W]`` images; the label does
not move, so the output action is trivial):

========  ======================  ===========================================
name      group                   generators
========  ======================  ===========================================
``c4``    ``cyclic(4)``           ``r`` = ``torch.rot90(x, 1, dims=(-2, -1))``
``hflip`` ``cyclic(2)``           ``s`` = left-right mirror (flip of ``W``)
``vflip`` ``cyclic(2)``           ``s`` = up-down mirror (flip of ``H``)
``d4``    ``dihedral(4)``         ``r`` (rot90) and ``s`` (left-right mirror)
========  ======================  ===========================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from equirl.actions import SpatialAction, TrivialAction
from equirl.averaging import METHODS, GroupAveraged
from equirl.groups import Group, cyclic, dihedral
from equirl.symmetry import Symmetry

__all__ = [
    "IMAGE_GROUPS",
    "CLASSIFIER_PROXY_LOSSES",
    "image_symmetry",
    "infer_feature_dim",
    "equivariant_classifier",
    "ImageEncoder",
    "TextClassifierHead",
    "encode_labels",
    "zero_shot_classifier",
    "equivariant_zero_shot",
]

IMAGE_GROUPS: dict[str, tuple[Callable[[], Group], tuple[str, ...], str]] = {
    "c4": (lambda: cyclic(4), ("rot90",), "rotations by multiples of 90 degrees"),
    "hflip": (lambda: cyclic(2), ("flip1",), "left-right mirror"),
    "vflip": (lambda: cyclic(2), ("flip0",), "up-down mirror"),
    "d4": (lambda: dihedral(4), ("rot90", "flip1"), "rotations by 90 degrees and mirrors (dihedral D4)"),
}
"""Image groups by name: ``(group factory, spatial generators, description)``."""

CLASSIFIER_PROXY_LOSSES = ("entropy", "neg_max_prob")
"""The paper's proxy losses for classifiers (entropy of the softmax, negative max probability)."""


def image_symmetry(group: str = "c4", image_size: int | tuple[int, int] | None = None) -> Symmetry:
    """The symmetry of an image classification task: ``group`` acting on pixels, labels invariant.

    :param group: a name from :data:`IMAGE_GROUPS` (``"c4"``, ``"hflip"``, ``"vflip"``, ``"d4"``).
    :param image_size: optional ``H`` or ``(H, W)``; when given the action is checked now (rot90
        needs square images).
    :return: a :class:`~equirl.Symmetry` whose input action acts on dims ``(-2, -1)`` of
        ``[B, C, H, W]`` and whose output action is trivial.
    """
    key = group.lower()
    if key not in IMAGE_GROUPS:
        raise ValueError(f"Unknown image group {group!r}; choose one of {sorted(IMAGE_GROUPS)}.")
    factory, generators, description = IMAGE_GROUPS[key]
    g = factory()
    shape = None
    if image_size is not None:
        shape = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    action = SpatialAction(g, list(generators), dims=(-2, -1), shape=shape)  # type: ignore[arg-type]
    return Symmetry(g, action, TrivialAction(g), name=f"image {key}", description=f"{description}; label invariant")


def infer_feature_dim(encoder: Callable[[torch.Tensor], torch.Tensor], input_shape: Sequence[int]) -> int:
    """Size ``F`` of ``encoder``'s output for one dummy sample of shape ``input_shape`` (``(C, H, W)``)."""
    module = encoder if isinstance(encoder, nn.Module) else None
    was_training = module.training if module is not None else False
    try:
        if module is not None:
            module.eval()
            p = next(iter(module.parameters()), None)
            dtype, device = (p.dtype, p.device) if p is not None else (torch.float32, torch.device("cpu"))
        else:
            dtype, device = torch.float32, torch.device("cpu")
        with torch.no_grad():
            out = encoder(torch.zeros(1, *input_shape, dtype=dtype, device=device))
    finally:
        if module is not None:
            module.train(was_training)
    return int(out.reshape(1, -1).shape[1])


def equivariant_classifier(
    model: nn.Module | None = None,
    *,
    encoder: nn.Module | None = None,
    head: nn.Module | None = None,
    group: str | Symmetry = "c4",
    method: str = "equitune",
    feature_dim: int | None = None,
    input_shape: Sequence[int] | None = None,
    proxy_loss: str = "entropy",
    **reducer_kwargs: Any,
) -> GroupAveraged:
    """Wrap an image classifier into an exactly invariant one (equitune, equizero or λ-equitune).

    Give either ``model`` (``[B, C, H, W] -> [B, K]`` logits; the λ-net then reads the logits) or
    ``encoder`` (``[B, C, H, W] -> [B, F]`` backbone features, what the λ-net reads) and ``head``
    (``[B, F] -> [B, K]``), as in the paper where λ sees the pretrained network's image features.

    :param group: a name from :data:`IMAGE_GROUPS` or a ready :class:`~equirl.Symmetry`.
    :param method: ``"equitune"``, ``"equizero"`` or ``"lambda"``.
    :param feature_dim: ``F`` for the λ-net; inferred from ``input_shape`` (``(C, H, W)``) if omitted.
    :param proxy_loss: equizero's proxy loss on the logits: ``"entropy"`` or ``"neg_max_prob"``
        (the paper's choices), another name from ``equirl.PROXY_LOSSES`` or a callable.
    :param reducer_kwargs: passed to the core (``straight_through``, ``lambda_hidden``,
        ``lambda_temperature``, ``lambda_net``).
    :return: a :class:`~equirl.GroupAveraged` module, ``[B, C, H, W] -> [B, K]``.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; expected one of {METHODS} (use the model itself for 'plain').")
    if model is not None and (encoder is not None or head is not None):
        raise ValueError("Give either `model` or `encoder` (+ `head`), not both.")
    if model is None and encoder is None:
        raise ValueError("Give a classifier `model`, or an `encoder` and a `head`.")
    enc: nn.Module = model if model is not None else encoder  # type: ignore[assignment]
    symmetry = group if isinstance(group, Symmetry) else image_symmetry(group)
    if method == "lambda" and feature_dim is None and reducer_kwargs.get("lambda_net") is None:
        if input_shape is None:
            raise ValueError(
                "method='lambda' needs the size of the features the λ-net reads: give feature_dim, "
                "or input_shape=(C, H, W) to infer it."
            )
        feature_dim = infer_feature_dim(enc, input_shape)
    return GroupAveraged(
        symmetry, enc, head, method=method, feature_dim=feature_dim, proxy_loss=proxy_loss, **reducer_kwargs
    )


class ImageEncoder(nn.Module):
    """The image tower of an open_clip-style model, L2-normalised: ``[N, C, H, W] -> [N, D]``.

    :param model: any object with ``encode_image(images [N, C, H, W]) -> [N, D]``.
    :param normalize: divide by the L2 norm (as CLIP does before the cosine logits).
    """

    def __init__(self, model: Any, normalize: bool = True) -> None:
        super().__init__()
        if not callable(getattr(model, "encode_image", None)):
            raise TypeError(
                f"{type(model).__name__} has no encode_image(); an image-text model must follow the open_clip "
                "convention (encode_image(images) -> [N, D], encode_text(texts) -> [K, D])."
            )
        self.model = model
        self.normalize = normalize

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        z = self.model.encode_image(images)
        return F.normalize(z, dim=-1) if self.normalize else z


class TextClassifierHead(nn.Module):
    """Cosine logits against fixed label embeddings: ``[N, D] -> [N, K]``.

    :param text_features: ``[K, D]`` label embeddings (normalised here).
    :param logit_scale: multiplies the cosine similarities (CLIP uses 100).
    """

    text_features: torch.Tensor

    def __init__(self, text_features: torch.Tensor, logit_scale: float = 100.0) -> None:
        super().__init__()
        if text_features.dim() != 2:
            raise ValueError(f"text_features must be [K, D], got shape {tuple(text_features.shape)}.")
        self.register_buffer("text_features", F.normalize(text_features.detach().float(), dim=-1))
        self.logit_scale = float(logit_scale)

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        return self.logit_scale * image_features @ self.text_features.to(image_features.dtype).T


def encode_labels(
    model: Any,
    labels: Sequence[str],
    templates: Sequence[str] = ("a photo of a {}.",),
    tokenizer: Callable[[list[str]], Any] | None = None,
) -> torch.Tensor:
    """Label embeddings ``[K, D]`` for free-text ``labels``, averaged over prompt ``templates``.

    :param model: an object with ``encode_text``; with a ``tokenizer`` (open_clip's
        ``get_tokenizer(...)``) the tokens are passed, otherwise the list of strings.
    """
    if not callable(getattr(model, "encode_text", None)):
        raise TypeError(f"{type(model).__name__} has no encode_text(); expected an open_clip-style image-text model.")
    if not labels:
        raise ValueError("encode_labels: give at least one label.")
    per_template = []
    with torch.no_grad():
        for t in templates:
            texts = [t.format(label) for label in labels]
            z = model.encode_text(tokenizer(texts) if tokenizer is not None else texts)
            per_template.append(F.normalize(z.float(), dim=-1))
    return F.normalize(torch.stack(per_template).mean(0), dim=-1)


def zero_shot_classifier(
    model: Any,
    labels: Sequence[str],
    templates: Sequence[str] = ("a photo of a {}.",),
    tokenizer: Callable[[list[str]], Any] | None = None,
    logit_scale: float = 100.0,
) -> tuple[ImageEncoder, TextClassifierHead]:
    """The plain (not symmetrised) zero-shot classifier of an image-text model, as ``(encoder, head)``.

    ``head(encoder(images))`` gives ``[N, K]`` logits over ``labels``. ``nn.Sequential(encoder, head)``
    is the plain baseline.
    """
    encoder = ImageEncoder(model)
    head = TextClassifierHead(encode_labels(model, labels, templates, tokenizer), logit_scale)
    return encoder, head


def equivariant_zero_shot(
    model: Any,
    labels: Sequence[str],
    *,
    group: str | Symmetry = "c4",
    method: str = "equitune",
    templates: Sequence[str] = ("a photo of a {}.",),
    tokenizer: Callable[[list[str]], Any] | None = None,
    logit_scale: float = 100.0,
    feature_dim: int | None = None,
    input_shape: Sequence[int] | None = None,
    proxy_loss: str = "entropy",
    **reducer_kwargs: Any,
) -> GroupAveraged:
    """A zero-shot image-text classifier over free-text ``labels``, made invariant to ``group``.

    ``model`` follows the open_clip convention (``encode_image``, ``encode_text``), so a real CLIP
    drops in; the λ-net reads the normalised image features. Returns ``[B, C, H, W] -> [B, K]``.
    See :func:`equivariant_classifier` for the other arguments.
    """
    encoder, head = zero_shot_classifier(model, labels, templates, tokenizer, logit_scale)
    if feature_dim is None:
        feature_dim = int(head.text_features.shape[1])
    return equivariant_classifier(
        encoder=encoder,
        head=head,
        group=group,
        method=method,
        feature_dim=feature_dim,
        input_shape=input_shape,
        proxy_loss=proxy_loss,
        **reducer_kwargs,
    )
