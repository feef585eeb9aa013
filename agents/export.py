"""Export a trained DQN's Q-network (plain or equivariant) to ONNX, with a dynamic batch.

::

    from equirl.agents import export_onnx
    export_onnx(model, "cartpole_lambda.onnx")          # Q-values, input "obs", output "q_values"

    import onnxruntime as ort
    session = ort.InferenceSession("cartpole_lambda.onnx")
    q = session.run(None, {"obs": observations})[0]       # observations [batch, *obs_shape], any batch

The exported graph is the whole symmetrised forward (orbit, network over the orbit, group
averaging), so the exported model is as equivariant as the PyTorch one. It reads observations as
SB3 feeds them to the network (the observation space's dtype, images channel-first) and does SB3's
preprocessing itself (``float()``, and ``/255`` for image spaces). Needs the ``export`` extra:
``pip install 'equirl[export]'`` (onnx, onnxruntime, onnxscript).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from torch import nn

__all__ = ["export_onnx", "OUTPUTS"]

OUTPUTS = ("q_values", "actions")
"""What the exported graph returns: ``q_values [batch, n_actions]`` (float32) or greedy ``actions [batch]`` (int64)."""


class _QNetworkGraph(nn.Module):
    """``obs [B, *obs_shape] -> q_values [B, n_actions]`` or greedy ``actions [B]``: what gets exported."""

    def __init__(self, q_net: nn.Module, output: str) -> None:
        super().__init__()
        self.q_net = q_net
        self.output = output

    def forward(self, obs: th.Tensor) -> th.Tensor:
        q = self.q_net(obs)
        return q if self.output == "q_values" else q.argmax(dim=1)


def _q_net(model: BaseAlgorithm | BasePolicy | nn.Module) -> nn.Module:
    policy = model.policy if isinstance(model, BaseAlgorithm) else model
    q_net = getattr(policy, "q_net", None)
    if isinstance(q_net, nn.Module):
        return q_net
    if isinstance(model, nn.Module) and not isinstance(model, BasePolicy):
        return model
    raise TypeError(
        f"export_onnx exports a DQN's Q-network; {type(model).__name__} has none. Pass an SB3 DQN "
        "(plain or with EquiDQNPolicy), its policy, or a Q-network module."
    )


def export_onnx(
    model: BaseAlgorithm | BasePolicy | nn.Module,
    path: str | Path,
    *,
    output: str = "q_values",
    example_obs: np.ndarray | th.Tensor | None = None,
    opset_version: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Export the Q-network of ``model`` (an SB3 DQN, its policy, or a Q-network) to ONNX at ``path``.

    :param output: ``"q_values"`` (``[batch, n_actions]`` float32) or ``"actions"`` (greedy, ``[batch]`` int64).
    :param example_obs: one batch of observations ``[B, *obs_shape]`` to trace with (B >= 2); default:
        three samples of the model's observation space.
    :param opset_version: ONNX opset (default: the exporter's).
    :param overwrite: replace an existing file (otherwise a FileExistsError).
    :returns: ``path``. The graph's input is ``obs`` with a dynamic batch dim, its output is named ``output``.
        The file is written under a temporary name and renamed into place.

    The network is exported in evaluation mode (its training mode is restored afterwards).
    """
    if output not in OUTPUTS:
        raise ValueError(f"export_onnx: output must be one of {OUTPUTS}, got {output!r}.")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it, or choose another path.")
    q_net = _q_net(model)
    device = next(q_net.parameters()).device
    if example_obs is None:
        space: Any = getattr(q_net, "observation_space", None)
        if space is None:
            raise ValueError("export_onnx: give example_obs for a Q-network without an observation_space.")
        example_obs = np.stack([space.sample() for _ in range(3)])
    obs = th.as_tensor(example_obs, device=device)
    if obs.dim() < 2 or obs.shape[0] < 2:
        raise ValueError(
            f"export_onnx: example_obs must be a batch of at least 2 observations [B, *obs_shape], got shape "
            f"{tuple(obs.shape)} (a batch of 1 would fix the exported batch size to 1)."
        )
    graph = _QNetworkGraph(q_net, output)
    was_training = q_net.training
    q_net.train(False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with th.no_grad():
            program = th.onnx.export(
                graph,
                (obs,),
                input_names=["obs"],
                output_names=[output],
                dynamic_shapes={"obs": {0: th.export.Dim("batch")}},
                opset_version=opset_version,
                dynamo=True,
                verbose=False,
            )
        assert program is not None
        program.save(str(tmp))
        os.replace(tmp, path)
    finally:
        q_net.train(was_training)
        if tmp.exists():
            tmp.unlink()
    return path
