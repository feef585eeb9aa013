"""Symmetries declared on any observation space SB3's DQN accepts, lifted to what its network reads.

A symmetry is declared on the *raw* observation space, as the environment returns observations:

- ``Box``: any action on the observation's shape (images channel-first, as SB3 feeds them);
- ``Discrete(n)``: a permutation of the ``n`` states, for example
  ``ValuePermutationAction(group, [perm])`` with ``g·s = perm[s]`` (any action on integer scalars
  that permutes ``range(n)`` works; it is read off on every state);
- ``MultiDiscrete(nvec)``: a permutation of the sub-spaces and of the values within each,
  ``(g·x)[i] = v_i[x[p[i]]]``, for example :class:`~equirl.actions.PositionValuePermutationAction`,
  ``PermutationAction(dim=-1)``, ``ValuePermutationAction`` or a composition of them;
- ``MultiBinary``: a permutation of the bits, some of them complemented, ``(g·x)[i] = v_i[x[p[i]]]``
  with ``v_i`` the identity or ``[1, 0]``: ``PermutationAction`` / ``SpatialAction`` on the bits' shape,
  ``ValuePermutationAction(group, [[1, 0]])`` (complement every bit),
  :class:`~equirl.actions.PositionValuePermutationAction` or a composition;
- ``Dict``: a :class:`~equirl.actions.DictAction` holding one of the above per key (keys it does
  not name are invariant), or a ``TrivialAction``.

SB3 feeds its network a preprocessed float tensor: one-hot for Discrete and MultiDiscrete, ``float()``
for MultiBinary, per key for Dict. :func:`lift_symmetry` turns the declared symmetry into the same
group acting on that tensor (a permutation of the one-hot entries or of the bits; for complemented
bits the affine map ``x -> 1 - x`` on those entries), exactly, and :func:`preprocess` computes the
tensor; the equivariant Q-network takes the orbit of the preprocessed batch and feeds the features
extractor directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import preprocess_obs

from equirl import Symmetry
from equirl.actions import Action, DictAction, IndexAction, PermutationAction, TrivialAction
from equirl.groups import Group

__all__ = [
    "SUPPORTED_SPACES",
    "is_preprocessed",
    "lift_symmetry",
    "lift_action",
    "preprocess",
    "network_input",
    "extract_features",
    "default_features_extractor",
    "ComplementedBitsAction",
]

SUPPORTED_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Dict)
"""The observation spaces the equivariant policies accept (DQN, QR-DQN, PPO, A2C: those SB3's DQN accepts)."""

_PROBE_SEED = 0
_PROBE_SAMPLES = 256


def is_preprocessed(space: spaces.Space) -> bool:
    """Whether the orbit acts on SB3's preprocessed tensor (every space but Box; a Box keeps the raw path)."""
    return not isinstance(space, spaces.Box)


def preprocess(obs: Any, space: spaces.Space, normalize_images: bool = True) -> th.Tensor | dict[str, th.Tensor]:
    """SB3's preprocessing of a batch of observations, shaped for the orbit.

    ``Discrete(n)``: ``[B]`` or ``[B, 1]`` -> one-hot ``[B, n]``; ``MultiDiscrete(nvec)``: ``[B, k]`` ->
    concatenated one-hots ``[B, sum(nvec)]``; ``MultiBinary``: ``[B, *shape]`` float; ``Box`` as SB3
    (float, images scaled to [0, 1]); ``Dict``: a dict of the above per key.
    """
    if isinstance(space, spaces.Dict):
        return {k: preprocess(obs[k], s, normalize_images) for k, s in space.spaces.items()}  # type: ignore[misc]
    x = preprocess_obs(obs, space, normalize_images)
    assert isinstance(x, th.Tensor)
    if isinstance(space, spaces.Discrete):
        x = x.reshape(-1, int(space.n))
    return x


def network_input(obs: Any, space: spaces.Space, normalize_images: bool = True) -> th.Tensor | dict[str, th.Tensor]:
    """What the orbit acts on, for observations ``obs [B, ...]`` as SB3 passes them to a policy's network.

    ``Box``: the observations as float ``[B, ...]`` (SB3's ``preprocess_obs`` starts with ``obs.float()``;
    doing it before the orbit gives the same values and keeps the orbit's index operations on float32, much
    faster than on uint8 on CPU; images are scaled later, in :func:`extract_features`); every other space:
    :func:`preprocess` (one-hot, float, per key), on which :func:`lift_symmetry`'s symmetry acts.
    """
    if is_preprocessed(space):
        return preprocess(obs, space, normalize_images)
    assert isinstance(obs, th.Tensor)
    return obs if obs.is_floating_point() else obs.float()


def extract_features(x: Any, extractor: th.nn.Module, space: spaces.Space, normalize_images: bool = True) -> th.Tensor:
    """A features extractor on :func:`network_input` (or its orbit) ``[N, ...]`` -> ``[N, F]``: the rest of
    SB3's preprocessing first for a ``Box`` (images scaled to [0, 1]), the extractor directly otherwise."""
    if is_preprocessed(space):
        return extractor(x)  # type: ignore[no-any-return]
    return extractor(preprocess_obs(x, space, normalize_images))  # type: ignore[no-any-return]


def default_features_extractor(space: spaces.Space, features_extractor_class: type) -> type:
    """SB3's ``CombinedExtractor`` for a Dict space given the default ``FlattenExtractor`` (as SB3's
    ``MultiInputPolicy``), else ``features_extractor_class`` unchanged."""
    from stable_baselines3.common.torch_layers import CombinedExtractor, FlattenExtractor

    if isinstance(space, spaces.Dict) and features_extractor_class is FlattenExtractor:
        return CombinedExtractor
    return features_extractor_class


def _space_name(space: spaces.Space) -> str:
    return type(space).__name__


def _refuse(space: spaces.Space, why: str) -> ValueError:
    return ValueError(f"the input action does not fit the {_space_name(space)} observation space {space}: {why}")


def _short(values: list[Any], k: int = 12) -> str:
    """``values`` for an error message, the first ``k`` of a long list."""
    return str(values) if len(values) <= k else f"[{', '.join(map(str, values[:k]))}, ... ({len(values)} in all)]"


def _generator_images(action: Action, x: th.Tensor) -> list[th.Tensor]:
    """``g·x`` for each generator ``g`` of the action's group (x a batch)."""
    return [action.apply(int(ge), x) for ge in action.group.generator_indices]


def _lift_discrete(action: Action, space: spaces.Discrete) -> Action:
    n = int(space.n)
    states = th.arange(n, dtype=th.int64)
    try:
        action.validate(())  # a state is a scalar: no dims to act on
        images = _generator_images(action, states)
    except (ValueError, RuntimeError, IndexError, TypeError) as err:
        raise _refuse(
            space,
            f"its input action {action!r} cannot act on a state index ({err}). Declare a permutation of the "
            f"{n} states, e.g. ValuePermutationAction(group, [perm]) with g·s = perm[s].",
        ) from err
    perms = []
    for ge, img in zip(action.group.generator_indices, images, strict=True):
        p = img.reshape(-1)
        if p.shape != (n,) or not th.equal(p, p.round()) or sorted(p.long().tolist()) != list(range(n)):
            raise _refuse(
                space,
                f"element {action.group.element_names[ge]} maps the states range({n}) to {_short(p.tolist())}, "
                f"which is not a permutation of range({n}).",
            )
        # one-hot: out[p[s]] = in[s], i.e. out[i] = in[p⁻¹[i]]
        perms.append(np.argsort(p.long().numpy()).tolist())
    return PermutationAction(action.group, perms, dim=-1)


def _entry_maps(
    action: Action, nvec: np.ndarray, shape: tuple[int, ...], space: spaces.Space
) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """Read off ``(p, [v_i])`` per generator for an action on integer arrays of ``shape`` whose flattened
    entries take ``nvec`` values each, with ``(g·x)[i] = v_i[x[p[i]]]``.

    Probes: the zero array with one entry set to each of its values (which determine ``p`` and ``v``),
    then random arrays on which the read-off map must agree with the action.
    :raises ValueError: when the action is not of that form (naming the space and what to declare).
    """
    k = len(nvec)
    offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
    probes = np.zeros((int(nvec.sum()), k), dtype=np.int64)
    for j in range(k):
        probes[offsets[j] + np.arange(nvec[j]), j] = np.arange(nvec[j])
    rng = np.random.default_rng(_PROBE_SEED)
    check = np.stack([rng.integers(0, n, _PROBE_SAMPLES) for n in nvec], axis=1)
    what = "bits" if isinstance(space, spaces.MultiBinary) else "sub-spaces"
    how = (
        f"Declare a permutation of the {what} and of the values within each, (g·x)[i] = v_i[x[p[i]]], e.g. "
        "PermutationAction (or SpatialAction) on the entries, ValuePermutationAction, or "
        "equirl.actions.PositionValuePermutationAction(group, sizes, positions, values)"
        + (
            " (a bit is complemented by the value permutation [1, 0]; a sign -1 would map bit 1 to -1)."
            if what == "bits"
            else "."
        )
    )
    x = th.as_tensor(np.concatenate([probes, check])).reshape(-1, *shape)
    try:
        action.validate(shape)
        images = _generator_images(action, x)
    except (ValueError, RuntimeError, IndexError, TypeError) as err:
        raise _refuse(
            space, f"its input action {action!r} cannot act on arrays of shape {shape} ({err}). {how}"
        ) from err
    maps = []
    for ge, img in zip(action.group.generator_indices, images, strict=True):
        name = action.group.element_names[ge]
        if tuple(img.shape) != tuple(x.shape) or not th.equal(img, img.round()):
            raise _refuse(space, f"element {name} does not map integer arrays of shape {shape} to such arrays. {how}")
        out = img.reshape(len(x), k).long().numpy()
        pout, cout = out[: len(probes)], out[len(probes) :]
        p, v = np.full(k, -1, dtype=np.int64), []
        for i in range(k):
            # the input entry that output entry i reads: the one whose probes move it
            sources = [j for j in range(k) if len(set(pout[offsets[j] : offsets[j] + nvec[j], i].tolist())) > 1]
            if not sources and nvec[i] == 1:  # a constant entry: any other constant entry not yet taken
                sources = [j for j in range(k) if nvec[j] == 1 and j not in p][:1]
            if len(sources) != 1 or nvec[sources[0]] != nvec[i]:
                raise _refuse(space, f"element {name}: entry {i} of g·x does not read exactly one entry of x. {how}")
            p[i] = sources[0]
            vi = pout[offsets[p[i]] : offsets[p[i]] + nvec[i], i]
            if sorted(vi.tolist()) != list(range(nvec[i])):
                raise _refuse(
                    space, f"element {name}: entry {i} maps values to {vi.tolist()}, not a permutation. {how}"
                )
            v.append(vi)
        if sorted(p.tolist()) != list(range(k)):
            raise _refuse(space, f"element {name} does not permute the {what} ({p.tolist()}). {how}")
        expected = np.stack([v[i][check[:, p[i]]] for i in range(k)], axis=1)
        if not np.array_equal(expected, cout):
            raise _refuse(space, f"element {name} is not of the form (g·x)[i] = v_i[x[p[i]]] on random arrays. {how}")
        maps.append((p, v))
    return maps


def _lift_multidiscrete(action: Action, space: spaces.MultiDiscrete) -> Action:
    nvec = np.asarray(space.nvec, dtype=np.int64)
    if nvec.ndim != 1:
        raise _refuse(space, f"SB3 one-hot encodes 1-D MultiDiscrete spaces only; this nvec has shape {nvec.shape}.")
    offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
    perms = []
    for p, v in _entry_maps(action, nvec, (len(nvec),), space):
        # one-hot: out[o_i + v_i[u]] = in[o_{p[i]} + u]
        q = np.empty(int(nvec.sum()), dtype=np.int64)
        for i in range(len(nvec)):
            q[offsets[i] + v[i]] = offsets[p[i]] + np.arange(nvec[i])
        perms.append(q.tolist())
    return PermutationAction(action.group, perms, dim=-1)


class _TableAction(IndexAction):
    """A signed permutation of the flattened last ``len(shape)`` dims, given by its generator images."""

    def __init__(
        self, group: Group, shape: tuple[int, ...], images: list[tuple[np.ndarray, np.ndarray | None]]
    ) -> None:
        super().__init__(group, tuple(range(-len(shape), 0)))
        self.shape, self.images = shape, images
        self.tables(shape)

    def generator_images(self, size: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        if size != self.shape:
            raise ValueError(f"{self!r} acts on arrays of shape {self.shape}, got {size}.")
        return self.images

    def __repr__(self) -> str:
        return f"_TableAction({self.group.name}, shape={self.shape})"


class ComplementedBitsAction(Action):
    """A permutation of bits, some complemented, acting on ``{0, 1}`` floats: ``g·x = (σ_g(2x - 1) + 1) / 2``.

    ``σ_g`` (``inner``) is a signed permutation; a sign ``-1`` complements the bit (``b -> 1 - b``). Exact on
    bits. Tensors as ``inner``'s: ``orbit([*batch, *shape]) -> [|G|, *batch, *shape]``.
    """

    def __init__(self, inner: Action) -> None:
        super().__init__(inner.group)
        self.inner = inner

    def validate(self, sample_shape: Sequence[int]) -> None:
        self.inner.validate(sample_shape)

    def orbit(self, x: th.Tensor) -> th.Tensor:
        return (self.inner.orbit(2 * x - 1) + 1) / 2

    def apply_each(self, y: th.Tensor) -> th.Tensor:
        return (self.inner.apply_each(2 * y - 1) + 1) / 2

    def inverse_each(self, y: th.Tensor) -> th.Tensor:
        return (self.inner.inverse_each(2 * y - 1) + 1) / 2

    def __repr__(self) -> str:
        return f"ComplementedBitsAction({self.inner!r})"


def _lift_multibinary(action: Action, space: spaces.MultiBinary) -> Action:
    shape = tuple(int(s) for s in np.atleast_1d(space.n))
    n = int(np.prod(shape))
    maps = _entry_maps(action, np.full(n, 2, dtype=np.int64), shape, space)
    # bit i of g·x is bit p[i] of x, complemented where v_i = [1, 0]
    images: list[tuple[np.ndarray, np.ndarray | None]] = [
        (p, np.where([vi[0] == 1 for vi in v], -1.0, 1.0)) for p, v in maps
    ]
    inner = _TableAction(action.group, shape, images)
    return ComplementedBitsAction(inner) if any(s is not None and (s < 0).any() for _, s in images) else inner


def lift_action(action: Action, space: spaces.Space) -> Action:
    """The action on SB3's preprocessed tensor that ``action`` (declared on raw ``space``) induces.

    :raises ValueError: when the action does not fit the space (naming the space and what to declare).
    :raises TypeError: for a space SB3's DQN does not accept.
    """
    if not isinstance(space, SUPPORTED_SPACES):
        raise TypeError(
            f"Equivariant DQN supports the observation spaces SB3's DQN accepts "
            f"({', '.join(s.__name__ for s in SUPPORTED_SPACES)}), got the {_space_name(space)} space {space}."
        )
    if isinstance(space, spaces.Dict):
        if isinstance(action, TrivialAction):
            return DictAction(action.group, {})
        if not isinstance(action, DictAction):
            raise _refuse(
                space,
                f"dict observations need an equirl.actions.DictAction mapping keys to actions, got {action!r}.",
            )
        unknown = sorted(set(action.actions) - set(space.spaces))
        if unknown:
            raise _refuse(
                space, f"the DictAction names keys {unknown} that are not in the space ({sorted(space.spaces)})."
            )
        return DictAction(action.group, {k: lift_action(a, space.spaces[k]) for k, a in action.actions.items()})
    if isinstance(action, TrivialAction):
        return action
    if isinstance(space, spaces.Box):
        try:
            action.validate(space.shape)
        except ValueError as err:
            raise _refuse(space, str(err)) from err
        return action
    if isinstance(space, spaces.Discrete | spaces.MultiDiscrete) and np.any(np.asarray(space.start) != 0):
        raise _refuse(space, "SB3 one-hot encodes observations counted from 0; use a space with start=0.")
    if isinstance(space, spaces.Discrete):
        return _lift_discrete(action, space)
    if isinstance(space, spaces.MultiDiscrete):
        return _lift_multidiscrete(action, space)
    assert isinstance(space, spaces.MultiBinary)
    return _lift_multibinary(action, space)


def lift_symmetry(symmetry: Symmetry, space: spaces.Space) -> Symmetry:
    """``symmetry`` (declared on raw observations of ``space``) acting on SB3's network input instead.

    For a ``Box`` space this is ``symmetry`` itself (validated on the space's shape); otherwise the
    same group and output action with the input action lifted by :func:`lift_action`.
    """
    try:
        lifted = lift_action(symmetry.input_action, space)
    except ValueError as err:
        raise ValueError(f"Symmetry {symmetry.name!r}: {err}") from err
    if lifted is symmetry.input_action:
        return symmetry
    return Symmetry(
        symmetry.group, lifted, symmetry.output_action, name=symmetry.name, description=symmetry.description
    )
