"""The safe agent format and the safe zip reader for QR-DQN, PPO and A2C (plain and equivariant, every method),
HER agents, zero-shot transfer from plain PPO / QR-DQN zips, and the group-weight logger for the new policies."""

from __future__ import annotations

import base64
import json
import pickle
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch as th
from equirl.agents import (
    EquiActorCriticPolicy,
    EquiDQNPolicy,
    EquiQRDQNPolicy,
    GroupWeightLogger,
    equivariant_from_pretrained,
    load_agent,
    save_agent,
)
from equirl.agents.io import AgentFormatError, read_sb3_zip
from equirl.envs import get_symmetry
from equirl.envs.catalog import bitflipping_symmetry
from sb3_contrib import QRDQN
from stable_baselines3 import A2C, DQN, PPO, HerReplayBuffer
from stable_baselines3.common.envs import BitFlippingEnv
from stable_baselines3.common.logger import KVWriter, Logger

from equirl import METHODS, equivariance_error
from equirl.averaging import LambdaReducer
from tests.agents.test_io import _Payload, _rewrite

# (algorithm, environment, algorithm arguments): a continuous (Pendulum: torque -> -torque) and a discrete
# actor-critic, and QR-DQN on Acrobot (3 actions, one fixed by the reflection)
CASES: dict[str, tuple[type, str, dict[str, Any]]] = {
    "ppo": (PPO, "Pendulum-v1", dict(n_steps=32, batch_size=16, n_epochs=1, clip_range=0.3)),
    "a2c": (A2C, "CartPole-v1", dict(n_steps=8, use_rms_prop=False)),
    "qrdqn": (QRDQN, "Acrobot-v1", dict(learning_starts=16, train_freq=4, batch_size=16, target_update_interval=20)),
}
POLICY = {"ppo": EquiActorCriticPolicy, "a2c": EquiActorCriticPolicy, "qrdqn": EquiQRDQNPolicy}


def _model(algo: str, method: str | None, seed: int = 0) -> Any:
    """A small model of ``algo``, plain (``method=None``) or equivariant, trained 32 steps (a few updates: the
    optimizer has state), λ-nets randomised."""
    cls, env, kw = CASES[algo]
    pk: dict[str, Any] = dict(net_arch=[16], **(dict(n_quantiles=5) if algo == "qrdqn" else {}))
    if method is not None:
        pk.update(symmetry=get_symmetry(env), method=method)
    model = cls(POLICY[algo] if method else "MlpPolicy", env, policy_kwargs=pk, seed=seed, device="cpu", **kw)
    model.learn(32)
    for module in model.policy.modules():  # λ away from its zero start (= equitune)
        if isinstance(module, LambdaReducer):
            for p in module.parameters():
                th.nn.init.normal_(p, std=0.5)
    return model


def outputs(model: Any, x: th.Tensor) -> dict[str, th.Tensor]:
    """Everything a policy outputs at ``x``: quantiles (online, target), or logits / Gaussian mean and std, values."""
    policy = model.policy
    with th.no_grad():
        if hasattr(policy, "quantile_net"):
            return {"quantiles": policy.quantile_net(x), "target": policy.quantile_net_target(x)}
        dist = policy.get_distribution(x).distribution
        out = {"values": policy.predict_values(x)}
        if isinstance(dist, th.distributions.Normal):
            out.update(mean=dist.mean, std=dist.stddev)
        else:
            out.update(logits=dist.logits)
        return out


def equivariance(model: Any, x: th.Tensor) -> float:
    """The largest equivariance error of the symmetrised outputs (quantiles online and target; actor output)."""
    sym = model.policy.symmetry
    if hasattr(model.policy, "quantile_net"):
        return max(equivariance_error(n, sym, x) for n in (model.policy.quantile_net, model.policy.quantile_net_target))
    return equivariance_error(lambda o: model.policy.symmetrised_outputs(o)[0], sym, x)


FRESH = textwrap.dedent(
    """
    import json, sys, torch as th
    from equirl.agents import load_agent
    from tests.agents.test_io_algorithms import equivariance, outputs
    result = {}
    for path in json.loads(sys.argv[1]):
        model = load_agent(path, device="cpu")
        x = th.load(path + ".x.pt", weights_only=True)
        out = {k: v.tolist() for k, v in outputs(model, x).items()}
        out["error"] = equivariance(model, x) if hasattr(model.policy, "symmetry") else None
        out["class"] = type(model).__name__ + "/" + type(model.policy).__name__
        result[path] = out
    print(json.dumps(result))
    """
)


def test_every_algorithm_and_method_round_trips_in_a_fresh_process(tmp_path: Path) -> None:
    """Bit-identical outputs, equivariance kept, the optimizer state restored, for plain and every method; and
    for QR-DQN and PPO on Discrete and Dict observations."""
    expected = {}
    for algo in CASES:
        for method in (None, *METHODS):
            model = _model(algo, method)
            path = str(tmp_path / f"{algo}_{method}")
            save_agent(model, path)
            assert sorted(p.name for p in Path(path).iterdir()) == ["config.json", "model.safetensors"]
            x = th.randn(8, model.observation_space.shape[0])
            th.save(x, path + ".x.pt")
            expected[path] = (outputs(model, x), f"{type(model).__name__}/{type(model.policy).__name__}", method)
            loaded = load_agent(path, device="cpu")
            before, after = model.policy.optimizer.state_dict()["state"], loaded.policy.optimizer.state_dict()["state"]
            assert before and sorted(before) == sorted(after)
            assert all(th.equal(before[i][k], after[i][k]) for i in before for k in before[i])
    # QR-DQN and PPO on Discrete (FrozenLake) and Dict observations
    from tests.agents.test_spaces import sample_batch
    from tests.agents.test_spaces_algorithms import _actor_critic, _qrdqn, _randomise

    for case in ("discrete", "dict"):
        for model in (_qrdqn(case, "lambda"), _actor_critic(case, "equizero")):
            model.learn(32)
            _randomise(model.policy)
            path = str(tmp_path / f"{case}_{type(model).__name__}")
            save_agent(model, path)
            obs = sample_batch(model.observation_space, 16)
            th.save(obs, path + ".x.pt")
            expected[path] = (
                outputs(model, obs),
                f"{type(model).__name__}/{type(model.policy).__name__}",
                model.policy.method,
            )
    res = subprocess.run(
        [sys.executable, "-c", FRESH, json.dumps(sorted(expected))],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    for path, (out, cls, method) in expected.items():
        assert got[path]["class"] == cls, path
        for key, value in out.items():
            assert th.equal(th.tensor(got[path][key]), value), (path, key)
        if method is not None:
            assert got[path]["error"] <= 1e-5, path


@pytest.mark.parametrize("algo", sorted(CASES))
def test_loaded_agent_continues_training(tmp_path: Path, algo: str) -> None:
    model = _model(algo, "lambda")
    model.learn(64, reset_num_timesteps=False)  # the optimizer has state
    save_agent(model, tmp_path / "agent")
    loaded = load_agent(tmp_path / "agent", env=model.get_env(), device="cpu")
    assert loaded.num_timesteps == model.num_timesteps and loaded._n_updates == model._n_updates
    before = {k: v.clone() for k, v in loaded.policy.state_dict().items()}
    loaded.learn(64, reset_num_timesteps=False)
    assert loaded.num_timesteps == model.num_timesteps + 64
    assert any(not th.equal(before[k], v) for k, v in loaded.policy.state_dict().items())


def test_hyperparameters_survive(tmp_path: Path) -> None:
    model = _model("ppo", "equizero")
    save_agent(model, tmp_path / "ppo")
    loaded = load_agent(tmp_path / "ppo")
    for attr in ("n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "ent_coef", "learning_rate"):
        assert getattr(loaded, attr) == getattr(model, attr), attr
    assert loaded.clip_range(1.0) == 0.3 and loaded.policy.proxy_target == model.policy.proxy_target
    a2c = _model("a2c", None)
    save_agent(a2c, tmp_path / "a2c")
    assert type(load_agent(tmp_path / "a2c").policy.optimizer) is th.optim.Adam  # use_rms_prop=False kept


def _tamper(path: Path, edit: Any) -> None:
    config = json.loads((path / "config.json").read_text())
    edit(config)
    (path / "config.json").write_text(json.dumps(config))


def test_tampered_and_unknown_names_are_refused(tmp_path: Path) -> None:
    model = _model("ppo", "lambda")
    save_agent(model, tmp_path / "agent")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_agent(model, tmp_path / "agent")
    cases = {
        "policy.*'os.system' is not on the allow-list": lambda c: c["policy"].update({"class": "os.system"}),
        "policy EquiQRDQNPolicy is not a PPO policy": lambda c: c["policy"].update({"class": "EquiQRDQNPolicy"}),
        "activation_fn 'Swish' is not on the allow-list": lambda c: c["policy"].update({"activation_fn": "Swish"}),
        "rollout_buffer_class 'Evil' is not on the allow-list": lambda c: c["hyperparams"].update(
            {"rollout_buffer_class": "Evil"}
        ),
        "algorithm 'SAC' is not supported": lambda c: c.update({"algorithm": "SAC"}),
        "unknown PPO hyperparameters \\['train_freq'\\]": lambda c: c["hyperparams"].update(
            {"train_freq": [4, "step"]}
        ),
    }
    for i, (message, edit) in enumerate(cases.items()):
        bad = tmp_path / f"bad{i}"
        save_agent(model, bad)
        _tamper(bad, edit)
        with pytest.raises(AgentFormatError, match=message):
            load_agent(bad)


def test_her_agent_saves_and_loads(tmp_path: Path) -> None:
    """DQN + HerReplayBuffer on Dict observations: the buffer class and its settings by allowed name."""

    def env() -> BitFlippingEnv:
        return BitFlippingEnv(n_bits=4, continuous=False, max_steps=4)

    model = DQN(
        EquiDQNPolicy, env(), replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs=dict(n_sampled_goal=2, goal_selection_strategy="final"), buffer_size=200,
        learning_starts=8, batch_size=8, policy_kwargs=dict(symmetry=bitflipping_symmetry(4), method="lambda",
        net_arch=[16]), seed=0, device="cpu",
    )  # fmt: skip
    model.learn(48)
    save_agent(model, tmp_path / "her")
    config = json.loads((tmp_path / "her" / "config.json").read_text())
    assert config["hyperparams"]["replay_buffer_class"] == "HerReplayBuffer"
    loaded = load_agent(tmp_path / "her", env=env(), device="cpu")
    rb = loaded.replay_buffer
    assert isinstance(rb, HerReplayBuffer) and rb.n_sampled_goal == 2 and rb.goal_selection_strategy.name == "FINAL"
    obs = {
        k: th.as_tensor(np.stack([s.sample() for _ in range(6)])) for k, s in loaded.observation_space.spaces.items()
    }
    with th.no_grad():
        assert th.equal(loaded.q_net(obs), model.q_net(obs)) and th.equal(
            loaded.q_net_target(obs), model.q_net_target(obs)
        )
    assert equivariance_error(loaded.q_net, loaded.policy.symmetry, obs) <= 1e-5
    loaded.learn(48, reset_num_timesteps=False)  # HER samples goals through the given environment
    assert loaded.replay_buffer.size() > 0


# -- plain SB3 zips: read without unpickling, made equivariant (zero-shot transfer) ----------------------------
def _plain_zip(tmp_path: Path, algo: str) -> tuple[Any, Path]:
    model = _model(algo, None, seed=1)
    model.learn(256, reset_num_timesteps=False)
    path = tmp_path / f"{algo}.zip"
    model.save(path)
    return model, path


def _views(plain: Any, sym: Any, x: th.Tensor) -> th.Tensor:
    """The plain network's output at each view ``ρ(g)⁻¹ f(g·x)``: ``[G, B, ...]`` (quantiles or actor output)."""
    orbit = sym.input_action.orbit(x).flatten(0, 1)
    with th.no_grad():
        if hasattr(plain.policy, "quantile_net"):
            y = plain.policy.quantile_net(orbit)
        else:
            latent_pi, _ = plain.policy.mlp_extractor(plain.policy.extract_features(orbit))
            y = plain.policy.action_net(latent_pi)
    return sym.output_action.inverse_each(y.unflatten(0, (sym.order, -1)))


@pytest.mark.parametrize("algo", ["ppo", "qrdqn"])
def test_plain_zip_becomes_the_equivariant_model_of_its_algorithm(tmp_path: Path, algo: str) -> None:
    plain, path = _plain_zip(tmp_path, algo)
    marker = tmp_path / "pwned"  # a payload in the data JSON: never decoded
    data = json.loads(zipfile.ZipFile(path).read("data"))
    blob = base64.b64encode(pickle.dumps(_Payload(marker))).decode()
    data["ep_success_buffer"] = {":type:": "<class 'collections.deque'>", ":serialized:": blob}
    evil = _rewrite(path, tmp_path / "evil.zip", data=json.dumps(data).encode())
    read = read_sb3_zip(evil, device="cpu")
    assert type(read) is type(plain)
    assert all(th.equal(v, read.policy.state_dict()[k]) for k, v in plain.policy.state_dict().items())
    env = CASES[algo][1]
    sym = get_symmetry(env)
    x = th.randn(16, plain.observation_space.shape[0])
    views = _views(plain, sym, x)
    for method in METHODS:
        model = equivariant_from_pretrained(evil, sym, method)
        assert type(model) is type(plain) and isinstance(model.policy, POLICY[algo])
        assert equivariance(model, x) <= 1e-5
        with th.no_grad():
            y = model.policy.quantile_net(x) if algo == "qrdqn" else model.policy.symmetrised_outputs(x)[0]
        if method in ("equitune", "lambda"):  # λ starts at zero: equitune, the mean of the plain views
            assert th.allclose(y, views.mean(0), atol=1e-5), method
        else:  # equizero: one of the plain network's views at every state
            close = (views - y).flatten(2).abs().amax(-1) <= 1e-5  # [G, B]
            assert close.any(0).all(), method
        if algo == "qrdqn":
            assert th.equal(model.policy.quantile_net_target(x), model.policy.quantile_net(x))
    assert not marker.exists()


def test_transfer_refuses_a_symmetry_that_does_not_fit(tmp_path: Path) -> None:
    from equirl.agents import TransferError

    _, path = _plain_zip(tmp_path, "qrdqn")
    with pytest.raises(TransferError, match="QRDQN.*cannot be made equivariant with 'CartPole-v1'"):
        equivariant_from_pretrained(path, get_symmetry("CartPole-v1"), "equitune")


# -- group-weight logging --------------------------------------------------------------------------------------
class _Recorder(KVWriter):
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.rows.append(dict(key_values))


@pytest.mark.parametrize(
    ("algo", "method"), [("qrdqn", "lambda"), ("ppo", "equizero"), ("a2c", "lambda"), ("ppo", "equitune")]
)
def test_group_weights_are_logged_for_the_new_policies(algo: str, method: str) -> None:
    model = _model(algo, method)
    recorder = _Recorder()
    model.set_logger(Logger(None, [recorder]))
    model.learn(128, callback=GroupWeightLogger(), log_interval=1, reset_num_timesteps=False)
    model.logger.dump(model.num_timesteps)
    rows = [r for r in recorder.rows if "equi/entropy" in r]
    if method == "equitune":  # uniform weights: nothing to log
        assert not rows
        return
    names = model.policy.symmetry.group.element_names
    assert rows and all(set(r) >= {"equi/max_weight", *(f"equi/weight/{n}" for n in names)} for r in rows)
    for r in rows:
        assert 0.0 <= r["equi/entropy"] <= np.log(len(names)) + 1e-6
        assert abs(sum(r[f"equi/weight/{n}"] for n in names) - 1) < 1e-5


def test_equivariant_zips_need_their_symmetry_and_keep_their_settings(tmp_path: Path) -> None:
    """An EquiActorCriticPolicy / EquiQRDQNPolicy zip: read safely with the symmetry given (its settings, a string
    proxy_target included, from the readable fields), or with SB3's loader when trusted."""
    from equirl.agents import TransferError, load_pretrained

    for algo, method in (("ppo", "equizero"), ("qrdqn", "equizero-td")):
        cls, env, kw = CASES[algo]
        pk: dict[str, Any] = dict(symmetry=get_symmetry(env), method=method, net_arch=[8], proxy_loss="neg_max")
        pk.update(dict(n_quantiles=3) if algo == "qrdqn" else dict(proxy_target="actor", proxy_loss="entropy"))
        model = cls(POLICY[algo], env, policy_kwargs=pk, seed=0, device="cpu", **kw)
        model.save(tmp_path / f"{algo}.zip")
        with pytest.raises(TransferError, match="pass symmetry="):
            load_pretrained(tmp_path / f"{algo}.zip")
        for read in (
            read_sb3_zip(tmp_path / f"{algo}.zip", symmetry=get_symmetry(env), device="cpu"),
            load_pretrained(tmp_path / f"{algo}.zip", trusted=True),
        ):
            assert type(read.policy) is POLICY[algo] and read.policy.equivariance == model.policy.equivariance
            assert getattr(read.policy, "proxy_target", None) == getattr(model.policy, "proxy_target", None)
            x = th.randn(4, model.observation_space.shape[0])
            for key, value in outputs(model, x).items():
                assert th.equal(outputs(read, x)[key], value), (algo, key)
