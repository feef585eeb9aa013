"""Transfer of pretrained SB3 DQNs: weights kept, exact equivariance, clear errors, λ's first stage."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from equirl.agents import TransferError, equivariant_from_pretrained, fit_lambda
from equirl.agents.policies import EquiQNetwork
from equirl.envs import get_symmetry, make_env
from stable_baselines3 import DQN

from equirl import PermutationAction, SignFlipAction, Symmetry, cyclic, equivariance_error

SMALL = dict(net_arch=[32, 32])


_CACHE: dict[str, Path] = {}


def _pretrained(env_id: str, tmp_path: Path, seed: int = 0) -> Path:
    """A 'pretrained' plain SB3 DQN (random weights are enough to check copying), saved as a zip (cached)."""
    if env_id in _CACHE and _CACHE[env_id].exists():
        return _CACHE[env_id]
    model = DQN("MlpPolicy", make_env(env_id), policy_kwargs=SMALL, seed=seed, learning_starts=10, device="cpu")
    # perturb the last layer so that no method can pass by accident of a symmetric init
    with th.no_grad():
        for p in model.policy.q_net.parameters():
            p.add_(0.3 * th.randn_like(p))
    path = tmp_path / f"{env_id.replace('/', '_')}.zip"
    model.save(path)
    _CACHE[env_id] = path
    return path


def _pre_q(model: DQN, obs: th.Tensor) -> th.Tensor:
    with th.no_grad():
        return model.policy.q_net(obs)


def _randomise_lambda(q_net: EquiQNetwork) -> None:
    with th.no_grad():
        for p in q_net.reducer.lambda_net.parameters():
            p.copy_(th.randn_like(p))


@pytest.mark.parametrize("method", ["equitune", "equizero", "lambda"])
def test_weights_copied_and_target_matches(tmp_path: Path, method: str) -> None:
    path = _pretrained("CartPole-v1", tmp_path)
    pre = DQN.load(path, device="cpu")
    new = equivariant_from_pretrained(path, get_symmetry("CartPole-v1"), method)
    src = pre.policy.q_net.state_dict()
    dst = new.policy.q_net.state_dict()
    for k, v in src.items():
        assert th.equal(dst[k], v), k
    tgt = new.policy.q_net_target.state_dict()
    assert dst.keys() == tgt.keys()
    for k in dst:
        assert th.equal(dst[k], tgt[k]), k


def test_equitune_output_is_group_average_of_pretrained(tmp_path: Path) -> None:
    """Q_G(s) = ½(Q(s) + ρ(g)⁻¹ Q(g·s)) computed from the pretrained network; on a state fixed by the
    group (Acrobot hanging at rest) the torque-free action keeps the pretrained value exactly."""
    path = _pretrained("Acrobot-v1", tmp_path)
    pre = DQN.load(path, device="cpu")
    new = equivariant_from_pretrained(path, get_symmetry("Acrobot-v1"), "equitune")
    s = th.randn(16, 6)
    q_pre, q_pre_mirror = _pre_q(pre, s), _pre_q(pre, s * th.tensor([1.0, -1, 1, -1, -1, -1]))
    expected = 0.5 * (q_pre + q_pre_mirror[:, [2, 1, 0]])
    assert th.allclose(_pre_q(new, s), expected, atol=1e-6)
    rest = th.tensor([[1.0, 0.0, 1.0, 0.0, 0.0, 0.0]])  # g·rest = rest
    q_rest, q_rest_pre = _pre_q(new, rest), _pre_q(pre, rest)
    assert th.allclose(q_rest[0, 1], q_rest_pre[0, 1], atol=1e-6)
    assert th.allclose(q_rest[0, [0, 2]], q_rest_pre[0, [0, 2]].mean().expand(2), atol=1e-6)


def test_equizero_picks_a_pretrained_view(tmp_path: Path) -> None:
    path = _pretrained("CartPole-v1", tmp_path)
    pre = DQN.load(path, device="cpu")
    new = equivariant_from_pretrained(path, get_symmetry("CartPole-v1"), "equizero")
    s = th.randn(32, 4)
    a, b = _pre_q(pre, s), _pre_q(pre, -s)[:, [1, 0]]
    pick_a = a.max(1).values >= b.max(1).values
    expected = th.where(pick_a[:, None], a, b)
    assert th.allclose(_pre_q(new, s), expected, atol=1e-6)


@pytest.mark.parametrize("method", ["equitune", "equizero", "lambda"])
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "equirl/RotGrid-Corner-v0"])
def test_transferred_network_is_equivariant(tmp_path: Path, env_id: str, method: str) -> None:
    path = _pretrained(env_id, tmp_path)
    sym = get_symmetry(env_id)
    new = equivariant_from_pretrained(path, sym, method)
    q_net = new.policy.q_net
    assert isinstance(q_net, EquiQNetwork)
    if method == "lambda":
        _randomise_lambda(q_net)
    obs = np.stack([new.observation_space.sample() for _ in range(16)])
    x = th.as_tensor(obs)
    pre = DQN.load(path, device="cpu")
    assert equivariance_error(q_net, sym, x) <= 1e-5
    # the pretrained network itself is not equivariant (the check can fail)
    assert equivariance_error(pre.policy.q_net, sym, x) > 1e-3


def test_plain_copy_is_the_pretrained_network(tmp_path: Path) -> None:
    path = _pretrained("CartPole-v1", tmp_path)
    pre = DQN.load(path, device="cpu")
    new = equivariant_from_pretrained(path, None, "plain")
    s = th.randn(8, 4)
    assert th.equal(_pre_q(new, s), _pre_q(pre, s))


def test_observation_space_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    path = _pretrained("Acrobot-v1", tmp_path)
    with pytest.raises(TransferError, match=r"Acrobot-v1.zip does not fit the symmetry 'CartPole-v1'.*\(6,\)"):
        equivariant_from_pretrained(path, get_symmetry("CartPole-v1"), "equitune")


def test_action_space_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    path = _pretrained("CartPole-v1", tmp_path)
    c2 = cyclic(2)
    three_actions = Symmetry(c2, SignFlipAction(c2, [[-1.0] * 4]), PermutationAction(c2, [[2, 1, 0]]), name="wrong")
    with pytest.raises(TransferError, match=r"action space Discrete\(2\)"):
        equivariant_from_pretrained(path, three_actions, "lambda")


def test_environment_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    path = _pretrained("CartPole-v1", tmp_path)
    with pytest.raises((TransferError, ValueError)):
        equivariant_from_pretrained(path, get_symmetry("CartPole-v1"), "equitune", env=gym.make("Acrobot-v1"))


def test_transferred_model_round_trips(tmp_path: Path) -> None:
    path = _pretrained("CartPole-v1", tmp_path)
    new = equivariant_from_pretrained(path, get_symmetry("CartPole-v1"), "lambda")
    _randomise_lambda(new.policy.q_net)
    new.save(tmp_path / "equi.zip")
    back = DQN.load(tmp_path / "equi.zip", device="cpu")
    s = th.randn(8, 4)
    assert th.allclose(_pre_q(new, s), _pre_q(back, s))


def test_fit_lambda_trains_only_lambda(tmp_path: Path) -> None:
    path = _pretrained("CartPole-v1", tmp_path)
    new = equivariant_from_pretrained(
        path,
        get_symmetry("CartPole-v1"),
        "lambda",
        env=make_env("CartPole-v1"),
        hyperparams=dict(learning_starts=32, batch_size=32, train_freq=4, gradient_steps=4, learning_rate=1e-2),
        seed=0,
    )
    before = {k: v.clone() for k, v in new.policy.q_net.state_dict().items()}
    fit_lambda(new, 200)
    after = new.policy.q_net.state_dict()
    changed = {k for k in before if not th.equal(before[k], after[k])}
    assert changed and all(k.startswith("reducer.") for k in changed), changed
    assert all(p.requires_grad for p in new.policy.q_net.parameters())  # unfrozen for finetuning
    x = th.randn(16, 4)
    assert equivariance_error(new.policy.q_net, get_symmetry("CartPole-v1"), x) <= 1e-5


def test_fit_lambda_rejects_other_methods(tmp_path: Path) -> None:
    new = equivariant_from_pretrained(_pretrained("CartPole-v1", tmp_path), get_symmetry("CartPole-v1"), "equitune")
    with pytest.raises(ValueError, match="λ-equitune"):
        fit_lambda(new, 10)


PRETRAINED_DIR = Path(__file__).resolve().parents[2] / "agents" / "pretrained"


@pytest.mark.parametrize("zip_path", sorted(PRETRAINED_DIR.glob("*.zip")), ids=lambda p: p.stem)
def test_committed_pretrained_agents_transfer(zip_path: Path) -> None:
    """Every committed agent has metadata, loads, fits its environment's symmetry and becomes equivariant."""
    import json

    meta = json.loads(zip_path.with_suffix(".json").read_text())
    for key in ("env_id", "method", "timesteps", "seed", "eval_mean_return", "command"):
        assert key in meta, key
    assert meta["method"] == "plain"
    assert zip_path.stat().st_size < 1_500_000
    sym = get_symmetry(meta["env_id"])
    new = equivariant_from_pretrained(zip_path, sym, "equizero")
    obs = th.as_tensor(np.stack([new.observation_space.sample() for _ in range(8)]))
    assert equivariance_error(new.policy.q_net, sym, obs) <= 1e-5


def test_suite_derives_tasks_for_a_user_env_and_zip(tmp_path: Path) -> None:
    """A registered environment and symmetry that are not in TASKS, with a user's zip: the tasks are the worlds
    seen through each element of C4, and an exactly equivariant agent scores the same in all of them zero-shot."""
    import json

    from equirl.agents.transfer_suite import run_suite
    from equirl.envs import register_symmetry, rotgrid_symmetry
    from equirl.envs.gridworld import RotGridEnv

    register_symmetry(
        "test/RotGrid-Cross", lambda: rotgrid_symmetry("C4"), overwrite=True,
        make_env=lambda **kw: RotGridEnv(layout="cross", **kw),
    )  # fmt: skip
    try:
        zip_path = tmp_path / "mine.zip"
        model = DQN("MlpPolicy", RotGridEnv(layout="cross"), policy_kwargs=SMALL, seed=0, device="cpu")
        with th.no_grad():
            for p in model.policy.q_net.parameters():
                p.add_(0.3 * th.randn_like(p))
        model.save(zip_path)
        with pytest.raises(ValueError, match="--pretrained"):
            run_suite("test/RotGrid-Cross", seeds=1, steps=0, out=tmp_path / "none")
        table = run_suite(
            "test/RotGrid-Cross", pretrained=zip_path, methods=["plain", "equitune"], seeds=1, steps=0,
            eval_episodes=4, out=tmp_path / "out",
        )  # fmt: skip
        for name in (
            "original world (pretraining)",
            "world seen through r",
            "world seen through r^2",
            "world seen through r^3",
        ):
            assert name in table
        runs = [json.loads(line) for line in (tmp_path / "out" / "runs.jsonl").read_text().splitlines()]
        assert len(runs) == 8
        equi = {r["task"]: r["zero_shot"] for r in runs if r["method"] == "equitune"}
        assert len(set(equi.values())) == 1, equi  # episode by episode the same: π(g·s) = g·π(s)
        with pytest.raises(ValueError, match="out of range"):
            run_suite("test/RotGrid-Cross", pretrained=zip_path, task_indices=[4], seeds=1, steps=0, out=tmp_path / "x")
    finally:
        from equirl.envs.catalog import unregister

        unregister("test/RotGrid-Cross")
