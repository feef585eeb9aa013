"""The safe agent format (JSON + safetensors) and reading SB3 zips without unpickling."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import pathlib
import pickle
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch
from equirl.agents import EquiDQNPolicy, SmallKernelCNN, equivariant_from_pretrained, load_agent, save_agent
from equirl.agents.hyperparams import list_pretrained, pretrained_path
from equirl.agents.io import AgentFormatError, read_sb3_zip
from equirl.agents.transfer import TransferError, load_pretrained
from equirl.envs import get_symmetry
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env

from tests.agents.image_env import RandomImageEnv
from tests.conftest import d4_image_symmetry

METHODS = ["equitune", "equizero", "lambda"]
FAST = dict(
    learning_starts=30, train_freq=8, gradient_steps=2, batch_size=16, buffer_size=500, target_update_interval=20
)


def _cartpole(method: str, **equi: object) -> DQN:
    kw = dict(symmetry=get_symmetry("CartPole-v1"), method=method, net_arch=[16, 16], **equi)
    return DQN(EquiDQNPolicy, "CartPole-v1", policy_kwargs=kw, seed=0, device="cpu", **FAST)


def _image(method: str) -> DQN:
    return DQN(
        EquiDQNPolicy,
        make_vec_env(RandomImageEnv, n_envs=1, seed=0),
        policy_kwargs=dict(
            symmetry=d4_image_symmetry(),
            method=method,
            net_arch=[16],
            features_extractor_class=SmallKernelCNN,
            features_extractor_kwargs=dict(features_dim=16, channels=[4, 8]),
        ),
        seed=0,
        device="cpu",
        **FAST,
    )


def _trained(model: DQN) -> DQN:
    model.learn(60)
    for net in (model.q_net, model.q_net_target):  # λ not equal to equitune, ties broken
        for p in net.reducer.parameters():
            torch.nn.init.normal_(p, std=0.5)
    return model


def _states(model: DQN, n: int = 12) -> torch.Tensor:
    torch.manual_seed(1)
    if model.observation_space.dtype == "uint8":
        return torch.randint(0, 256, (n, *model.observation_space.shape), dtype=torch.uint8)
    return torch.randn(n, *model.observation_space.shape)


FRESH = textwrap.dedent(
    """
    import json, sys, torch
    from equirl.agents import load_agent
    out = {}
    for path in sys.argv[1:]:
        model = load_agent(path, device="cpu")
        states = torch.load(path + ".states.pt", weights_only=True)
        with torch.no_grad():
            out[path] = {"q": model.q_net(states).tolist(), "t": model.q_net_target(states).tolist()}
    print(json.dumps(out))
    """
)


def _assert_only_json_and_safetensors(folder: Path) -> None:
    from safetensors import safe_open

    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    json.loads((folder / "config.json").read_text())
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        assert len(list(f.keys())) > 0
    for p in folder.iterdir():
        assert b"\x80\x04\x95" not in p.read_bytes()[:64] and b"cloudpickle" not in p.read_bytes()


def test_round_trip_is_bit_identical_in_a_fresh_process(tmp_path: Path) -> None:
    """equitune, equizero and λ on CartPole and on a D4 image task: saved, then loaded in a new Python."""
    models = {}
    for env in ("cartpole", "d4-image"):
        for method in METHODS:
            model = _trained(_cartpole(method) if env == "cartpole" else _image(method))
            folder = save_agent(model, tmp_path / f"{env}-{method}")
            _assert_only_json_and_safetensors(folder)
            torch.save(_states(model), f"{folder}.states.pt")
            config = json.loads((folder / "config.json").read_text())
            assert config["equivariance"]["method"] == method and config["symmetry"]["format"] == "equirl.symmetry/1"
            models[str(folder)] = model
    out = subprocess.run([sys.executable, "-c", FRESH, *models], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    for folder, model in models.items():
        states = _states(model)
        with torch.no_grad():
            assert torch.equal(torch.tensor(got[folder]["q"]), model.q_net(states)), folder
            assert torch.equal(torch.tensor(got[folder]["t"]), model.q_net_target(states)), folder


def test_non_default_settings_survive_save_and_load(tmp_path: Path) -> None:
    """lambda_temperature=0.25 and a non-default proxy come back, through save_agent and through policy.save."""
    model = _trained(_cartpole("lambda", lambda_temperature=0.25, lambda_hidden=8, proxy_loss="neg_margin"))
    loaded = load_agent(save_agent(model, tmp_path / "agent"), device="cpu")
    assert loaded.policy.equivariance == model.policy.equivariance
    assert loaded.q_net.reducer.temperature == 0.25
    model.policy.save(tmp_path / "policy.pth")
    policy = EquiDQNPolicy.load(tmp_path / "policy.pth", device="cpu")
    assert policy.equivariance.lambda_temperature == 0.25 and policy.q_net.reducer.temperature == 0.25
    assert policy.equivariance.proxy_loss == "neg_margin" and policy.equivariance.lambda_hidden == 8
    x = _states(model)
    with torch.no_grad():
        assert torch.equal(policy.q_net(x), model.q_net(x)) and torch.equal(loaded.q_net(x), model.q_net(x))


def test_loaded_agent_continues_training(tmp_path: Path) -> None:
    model = _trained(_cartpole("lambda"))
    loaded = load_agent(save_agent(model, tmp_path / "agent"), env="CartPole-v1", device="cpu")
    assert loaded.num_timesteps == model.num_timesteps and loaded._n_updates == model._n_updates
    opt_a, opt_b = model.policy.optimizer.state_dict(), loaded.policy.optimizer.state_dict()
    for pid, entries in opt_a["state"].items():
        for k, v in entries.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(opt_b["state"][pid][k])), k
    before = {k: v.clone() for k, v in loaded.policy.state_dict().items()}
    loaded.learn(100, reset_num_timesteps=False)
    assert loaded.num_timesteps >= model.num_timesteps + 100
    assert any(not torch.equal(before[k], v) for k, v in loaded.policy.state_dict().items())


def test_refuses_overwrite_and_unknown_classes(tmp_path: Path) -> None:
    model = _cartpole("equitune")
    folder = save_agent(model, tmp_path / "agent")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_agent(model, folder)
    save_agent(model, folder, overwrite=True)

    class Odd(torch.nn.ReLU):
        pass

    odd = DQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(activation_fn=Odd), device="cpu")
    with pytest.raises(TypeError, match="allow_class\\('activation_fn'"):
        save_agent(odd, tmp_path / "odd")
    assert not (tmp_path / "odd").exists()
    config = json.loads((folder / "config.json").read_text())
    config["policy"]["activation_fn"] = "os.system"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(AgentFormatError, match=r"config.json: activation_fn 'os.system' is not on the allow-list"):
        load_agent(folder)


def test_damaged_files_are_named(tmp_path: Path) -> None:
    folder = save_agent(_cartpole("equitune"), tmp_path / "agent")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(AgentFormatError, match=str(weights)):
        load_agent(folder)
    (folder / "config.json").write_text('{"format": "equirl.agent/1", ')
    with pytest.raises(AgentFormatError, match="config.json is damaged"):
        load_agent(folder)


@pytest.mark.parametrize("name", list_pretrained())
def test_pretrained_names_load_the_safe_format(name: str) -> None:
    """Every shipped agent: the safe folder (what the name loads) equals its SB3 zip, read without unpickling."""
    folder = pretrained_path(name)
    assert folder.is_dir()
    _assert_only_json_and_safetensors(folder)
    model = load_pretrained(name)
    zipped = read_sb3_zip(folder.with_suffix(".zip"), device="cpu")
    x = th_stack([model.observation_space.sample() for _ in range(16)])
    with torch.no_grad():
        assert torch.equal(model.q_net(x), zipped.q_net(x))
    meta = json.loads(folder.with_suffix(".json").read_text())
    assert int(model.train_freq.frequency) == int(meta["hyperparams"]["train_freq"])  # not SB3's default


def th_stack(samples: list) -> torch.Tensor:
    import numpy as np

    return torch.as_tensor(np.stack(samples))


# -- malicious files -------------------------------------------------------------------------------
class _Payload:
    """Unpickling this creates the marker file: what an attacker's code would do, harmlessly."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _plain_zip(tmp_path: Path, equivariant: bool = False) -> Path:
    if equivariant:
        model = _cartpole("lambda")
    else:
        model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[16, 16]), seed=0, device="cpu")
    path = tmp_path / ("equi.zip" if equivariant else "plain.zip")
    model.save(path)
    return path


def _rewrite(src: Path, dest: Path, **entries: bytes) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for item in zin.namelist():
            zout.writestr(item, entries.get(item.replace(".", "_"), zin.read(item)))
    return dest


def _data_payload(src: Path, dest: Path, marker: Path) -> Path:
    data = json.loads(zipfile.ZipFile(src).read("data"))
    blob = base64.b64encode(pickle.dumps(_Payload(marker))).decode()
    data["ep_success_buffer"] = {":type:": "<class 'collections.deque'>", ":serialized:": blob}
    data["policy_kwargs"][":serialized:"] = blob
    return _rewrite(src, dest, data=json.dumps(data).encode())


def _pth_payload(src: Path, dest: Path, marker: Path) -> Path:
    buf = io.BytesIO()
    torch.save({"q_net.q_net.0.weight": _Payload(marker)}, buf)
    return _rewrite(src, dest, policy_pth=buf.getvalue())


@pytest.mark.parametrize("equivariant", [False, True])
def test_payload_in_data_json_never_runs_by_default(tmp_path: Path, equivariant: bool) -> None:
    marker = tmp_path / "pwned"
    evil = _data_payload(_plain_zip(tmp_path, equivariant), tmp_path / "evil.zip", marker)
    sym = get_symmetry("CartPole-v1")
    load_pretrained(evil, symmetry=sym)
    equivariant_from_pretrained(evil, sym, "equizero")
    equivariant_from_pretrained(evil, sym, "plain")
    assert not marker.exists()
    with contextlib.suppress(Exception):
        DQN.load(evil, device="cpu")  # the trusted path does run it: the test above can fail
    assert marker.exists()


def test_payload_in_policy_pth_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = _pth_payload(_plain_zip(tmp_path), tmp_path / "evil.zip", marker)
    with pytest.raises(TransferError, match="policy.pth is not a plain tensor file"):
        load_pretrained(evil)
    with pytest.raises(TransferError, match="evil.zip"):
        equivariant_from_pretrained(evil, get_symmetry("CartPole-v1"), "equitune")
    assert not marker.exists()
    torch.load(io.BytesIO(zipfile.ZipFile(evil).read("policy.pth")), weights_only=False)  # would run it
    assert marker.exists()


def test_unreadable_fields_name_the_argument(tmp_path: Path) -> None:
    src = _plain_zip(tmp_path, equivariant=True)
    with pytest.raises(TransferError, match="pass symmetry="):
        load_pretrained(src)
    data = json.loads(zipfile.ZipFile(src).read("data"))
    data["observation_space"] = {":type:": "<class 'gymnasium.spaces.box.Box'>", ":serialized:": "AAAA"}
    data["policy_kwargs"]["activation_fn"] = "<class 'my.module.Swish'>"
    bad = _rewrite(src, tmp_path / "bad.zip", data=json.dumps(data).encode())
    with pytest.raises(TransferError, match=r"activation_fn .*pass policy_kwargs\['activation_fn'\]"):
        load_pretrained(bad, symmetry=get_symmetry("CartPole-v1"))
    with pytest.raises(TransferError, match="pass env="):
        load_pretrained(bad, symmetry=get_symmetry("CartPole-v1"), policy_kwargs={"activation_fn": torch.nn.ReLU})
    model = load_pretrained(
        bad,
        symmetry=get_symmetry("CartPole-v1"),
        policy_kwargs={"activation_fn": torch.nn.ReLU},
        env=DQN("MlpPolicy", "CartPole-v1", device="cpu").get_env(),
    )
    assert model.observation_space.shape == (4,)


def test_transfer_command_reads_the_zip_safely(tmp_path: Path) -> None:
    from equirl.cli import main as equirl_main

    marker = tmp_path / "pwned"
    evil = _data_payload(_plain_zip(tmp_path), tmp_path / "evil.zip", marker)
    args = ["transfer", "CartPole-v1", "--pretrained", str(evil), "--methods", "equizero", "--tasks", "0",
            "--seeds", "1", "--steps", "0", "--eval-episodes", "1", "--out", str(tmp_path / "out")]  # fmt: skip
    assert equirl_main(args) == 0
    assert not marker.exists()
    assert len((tmp_path / "out" / "runs.jsonl").read_text().splitlines()) == 1
