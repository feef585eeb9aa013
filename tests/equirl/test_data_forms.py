"""Configurations, groups, actions and symmetries as data: JSON round trips that act identically."""

from __future__ import annotations

import json

import pytest
import torch
from equirl.envs import get_symmetry, list_symmetries, make_env

import equirl as E
from equirl.actions import Action, register_action_kind
from equirl.proxy import PROXY_LOSSES, register_proxy_loss


def _json(data: dict) -> dict:
    return json.loads(json.dumps(data))


# -- EquivarianceConfig ----------------------------------------------------------------------------
def test_config_round_trip_and_reducer() -> None:
    cfg = E.EquivarianceConfig(method="equizero", proxy_loss="neg_margin", straight_through=False, tie_tolerance=1e-3)
    back = E.EquivarianceConfig.from_dict(_json(cfg.to_dict()))
    assert back == cfg
    red = back.make_reducer(None)
    assert isinstance(red, E.ZeroReducer) and red.tie_tolerance == 1e-3 and not red.straight_through
    lam = E.EquivarianceConfig(lambda_hidden=7, lambda_temperature=0.25).make_reducer(5)
    assert isinstance(lam, E.LambdaReducer) and lam.temperature == 0.25
    assert lam.lambda_net[0].out_features == 7


def test_config_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="Unknown method 'mean'"):
        E.EquivarianceConfig(method="mean")
    with pytest.raises(ValueError, match="Unknown proxy loss 'nope'"):
        E.EquivarianceConfig(proxy_loss="nope")
    with pytest.raises(ValueError, match="lambda_temperature must be > 0"):
        E.EquivarianceConfig(lambda_temperature=0)
    with pytest.raises(TypeError, match=r"Unknown equivariance argument\(s\) \['lambda_width'\]"):
        E.EquivarianceConfig.from_dict({"lambda_width": 3})


def test_callable_proxy_needs_a_registered_name() -> None:
    def my_proxy(outputs: torch.Tensor) -> torch.Tensor:
        return -outputs.mean(-1)

    cfg = E.EquivarianceConfig(method="equizero", proxy_loss=my_proxy)
    with pytest.raises(ValueError, match="register_proxy_loss"):
        cfg.to_dict()
    try:
        register_proxy_loss("test_mean_proxy", my_proxy)
        assert cfg.to_dict()["proxy_loss"] == "test_mean_proxy"
        assert E.EquivarianceConfig.from_dict(cfg.to_dict()).make_reducer(None)._proxy is my_proxy
    finally:
        PROXY_LOSSES.pop("test_mean_proxy", None)


# -- groups ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "group",
    [
        E.trivial_group(),
        E.cyclic(5),
        E.dihedral(4),
        E.direct_product(E.cyclic(2), E.dihedral(3)),
        E.permutation_group([[1, 2, 0, 3], [1, 0, 2, 3]], name="S3"),
    ],
    ids=lambda g: g.name,
)
def test_group_round_trip(group: E.Group) -> None:
    back = E.Group.from_dict(_json(group.to_dict()))
    assert back == group and back.name == group.name
    assert back.element_names == group.element_names and back.words == group.words
    assert back.generator_indices == group.generator_indices and back.generator_names == group.generator_names


def test_group_from_table_checks_the_axioms() -> None:
    # Z3 written as a table with another numbering: still a group, renumbered from its generator
    t = [[1, 2, 0], [2, 0, 1], [0, 1, 2]]  # identity is element 2
    g = E.Group.from_table("Z3", t, [0])
    assert g.order == 3 and g == E.cyclic(3)
    with pytest.raises(ValueError, match="no identity"):
        E.Group.from_table("bad", [[1, 0], [1, 0]], [0])
    with pytest.raises(ValueError, match="generate 1 of the 2"):
        E.Group.from_table("C2", [[0, 1], [1, 0]], [0])
    with pytest.raises(ValueError, match="not associative"):
        E.Group.from_table("L", [[0, 1, 2], [1, 0, 0], [2, 2, 0]], [1, 2])


# -- actions and symmetries ------------------------------------------------------------------------
def _same_action(a: Action, b: Action, sample: tuple[int, ...], dtype: torch.dtype = torch.float32) -> None:
    G = a.group.order
    x = (
        torch.randn(3, *sample)
        if dtype.is_floating_point
        else torch.randint(0, sample[-1] if sample else 2, (3, *sample))
    )
    assert torch.equal(a.orbit(x), b.orbit(x))
    y = torch.randn(G, 3, *sample)
    assert torch.equal(a.apply_each(y), b.apply_each(y)) and torch.equal(a.inverse_each(y), b.inverse_each(y))


def test_actions_with_signs_round_trip() -> None:
    d4 = E.dihedral(4)
    signed = E.PermutationAction(E.cyclic(4), [[1, 0]], signs=[[-1, 1]])  # (x, y) -> (-y, x): order 4
    for action, sample in [
        (signed, (2,)),
        (E.SpatialAction(d4, ["rot90", "flip0"], dims=(-3, -2)), (5, 5, 2)),
        (
            E.ComposedAction(
                E.SpatialAction(d4, ["rot90", "flip1"]), E.PermutationAction(d4, [[1, 2, 3, 0], [0, 3, 2, 1]], dim=-3)
            ),
            (4, 3, 3),
        ),
        (E.SignFlipAction(E.cyclic(2), [[1, -1, -1]]), (3,)),
        (E.TrivialAction(d4), (2,)),
    ]:
        data = _json(action.to_dict())
        back = Action.from_dict(data, action.group)
        assert type(back) is type(action)
        _same_action(action, back, sample)
    assert _json(signed.to_dict())["signs"] == [[-1, 1]]
    mirror = E.SignedPermutationAction(E.cyclic(2), [[1, 0, 2]], signs=[[1, 1, -1]])  # its own kind, signs kept
    back = Action.from_dict(_json(mirror.to_dict()), mirror.group)
    assert type(back) is E.SignedPermutationAction and _json(mirror.to_dict())["kind"] == "signed_permutation"
    _same_action(mirror, back, (3,))
    values = E.ValuePermutationAction(E.cyclic(2), [[0, 2, 1, 3]])
    back = Action.from_dict(_json(values.to_dict()), values.group)
    x = torch.randint(0, 4, (3, 5))
    assert torch.equal(values.orbit(x), back.orbit(x))


@pytest.mark.parametrize("name", list_symmetries())
def test_every_catalogue_symmetry_round_trips(name: str) -> None:
    sym = get_symmetry(name)
    back = E.Symmetry.from_dict(_json(sym.to_dict()))
    assert back.name == sym.name and back.group == sym.group and back.description == sym.description
    env = make_env(name)
    space, act = env.observation_space, env.action_space
    env.close()
    torch.manual_seed(0)
    if isinstance(sym.input_action, E.DictAction):  # Dict observations: per key
        assert isinstance(back.input_action, E.DictAction)
        assert back.input_action.actions.keys() == sym.input_action.actions.keys()
        for key, action in sym.input_action.actions.items():
            _same_action(action, back.input_action.actions[key], tuple(space[key].shape))
    else:
        _same_action(sym.input_action, back.input_action, tuple(space.shape))
    # Discrete: the action dimension of Q-values; Box (Pendulum): the action vector
    _same_action(sym.output_action, back.output_action, tuple(act.shape) or (int(act.n),))


def test_custom_action_without_data_form_is_a_clear_error() -> None:
    class Negate(Action):
        def apply_each(self, y: torch.Tensor) -> torch.Tensor:
            return y

    c2 = E.cyclic(2)
    sym = E.Symmetry(c2, Negate(c2), E.TrivialAction(c2))
    with pytest.raises(TypeError, match="Negate has no data form.*register_action_kind"):
        sym.to_dict()
    try:
        register_action_kind("test_negate", Negate, lambda a: {}, lambda g, d: Negate(g))
        back = E.Symmetry.from_dict(_json(sym.to_dict()))
        assert type(back.input_action) is Negate
    finally:
        from equirl.actions import ACTION_KINDS

        ACTION_KINDS.pop("test_negate", None)
    with pytest.raises(ValueError, match="Unknown action kind 'test_negate'"):
        E.Symmetry.from_dict(
            _json(
                {
                    **E.Symmetry(c2, E.TrivialAction(c2), E.TrivialAction(c2)).to_dict(),
                    "input_action": {"kind": "test_negate"},
                }
            )
        )


def test_symmetry_from_dict_rejects_other_formats() -> None:
    with pytest.raises(ValueError, match="expected format 'equirl.symmetry/1'"):
        E.Symmetry.from_dict({"format": "x"})
