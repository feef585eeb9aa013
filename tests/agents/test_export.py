"""ONNX export of plain and equivariant Q-networks, run with onnxruntime against PyTorch's Q-values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from equirl.agents import build_dqn, export_onnx, load_hyperparams
from equirl.envs import get_symmetry, make_env

ort = pytest.importorskip("onnxruntime", reason="needs the export extra: pip install 'equirl[export]'")
pytest.importorskip("onnxscript", reason="needs the export extra: pip install 'equirl[export]'")


def _model(env_id: str, hp_id: str, method: str):  # type: ignore[no-untyped-def]
    hp = load_hyperparams(hp_id)
    hp["policy_kwargs"]["net_arch"] = [32, 32]
    model = build_dqn(make_env(env_id), method, get_symmetry(env_id), hp, seed=0)
    if method == "lambda":  # a λ-net that is not constant, so λ-equitune is not equitune
        for net in (model.q_net,):
            torch.manual_seed(0)
            for p in net.reducer.parameters():
                torch.nn.init.normal_(p, std=0.5)
    return model


def _check(model, path: Path) -> None:  # type: ignore[no-untyped-def]
    session = ort.InferenceSession(str(path))
    (inp,) = session.get_inputs()
    assert inp.name == "obs" and not isinstance(inp.shape[0], int)  # a dynamic batch
    rng = np.random.default_rng(0)
    for batch in (1, 9):
        model.observation_space.seed(int(rng.integers(1000)))
        obs = np.stack([model.observation_space.sample() for _ in range(batch)])
        (q_onnx,) = session.run(None, {"obs": obs})
        with torch.no_grad():
            q_torch = model.q_net(torch.as_tensor(obs)).numpy()
        assert q_onnx.shape == q_torch.shape == (batch, model.action_space.n)
        assert np.abs(q_onnx - q_torch).max() <= 1e-5


@pytest.mark.parametrize("method", ["plain", "equitune", "equizero", "lambda"])
def test_onnx_export_matches_pytorch_q_values(method: str, tmp_path: Path) -> None:
    model = _model("CartPole-v1", "CartPole-v1", method)
    model.policy.set_training_mode(False)
    path = export_onnx(model, tmp_path / "q.onnx")
    assert path == tmp_path / "q.onnx" and list(tmp_path.iterdir()) == [path]  # no temporary file left
    assert model.q_net.training is False  # the mode it had before
    _check(model, path)


def test_onnx_export_of_an_image_policy_with_a_composed_action(tmp_path: Path) -> None:
    """MiniGrid full view, D4 on (x, y) and direction channels (merged index tables), uint8 observations."""
    model = _model("MiniGrid-Empty-5x5-v0/full-D4", "MiniGrid-Empty-5x5-v0", "equizero")
    _check(model, export_onnx(model, tmp_path / "q.onnx"))


@pytest.mark.slow
def test_onnx_export_greedy_actions(tmp_path: Path) -> None:
    model = _model("CartPole-v1", "CartPole-v1", "equitune")
    model.q_net.train(True)  # the training mode is restored after the export
    path = export_onnx(model, tmp_path / "a.onnx", output="actions")
    assert model.q_net.training is True
    obs = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    (actions,) = ort.InferenceSession(str(path)).run(None, {"obs": obs})
    model.q_net.train(False)
    with torch.no_grad():
        assert np.array_equal(actions, model.q_net(torch.as_tensor(obs)).argmax(1).numpy())


def test_onnx_export_refuses_bad_arguments_and_silent_overwrite(tmp_path: Path) -> None:
    model = _model("CartPole-v1", "CartPole-v1", "equitune")
    path = tmp_path / "a.onnx"
    path.write_bytes(b"a user's file")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_onnx(model, path)
    assert path.read_bytes() == b"a user's file"
    obs = np.zeros((1, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="output must be one of"):
        export_onnx(model, tmp_path / "b.onnx", output="probabilities")
    with pytest.raises(ValueError, match="at least 2 observations"):
        export_onnx(model, tmp_path / "b.onnx", example_obs=obs[:1])


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("method", ["equizero", "lambda"])
def test_eval_forward_is_stateless_and_traces(method: str) -> None:
    """No weights stored on the module in an evaluation forward; jit.trace works (no aten::isclose) and
    the traced graph follows a new batch size."""
    model = _model("CartPole-v1", "CartPole-v1", method)
    q_net = model.q_net.eval()
    x = torch.randn(5, 4)
    with torch.no_grad():
        expected = q_net(x)
        assert q_net.reducer.last_weights is None
        traced = torch.jit.trace(q_net, torch.randn(3, 4), check_trace=False)
        assert "isclose" not in str(traced.inlined_graph)
        assert torch.allclose(traced(x), expected, atol=1e-6)


def test_torch_export_with_a_dynamic_batch() -> None:
    """torch.export captures the evaluation forward (nothing stored on the module) and follows the batch."""
    model = _model("CartPole-v1", "CartPole-v1", "lambda")
    q_net = model.q_net.eval()
    program = torch.export.export(q_net, (torch.randn(3, 4),), dynamic_shapes={"obs": {0: torch.export.Dim("batch")}})
    x = torch.randn(11, 4)
    with torch.no_grad():
        assert torch.allclose(program.module()(x), q_net(x), atol=1e-6)
    assert q_net.reducer.last_weights is None
