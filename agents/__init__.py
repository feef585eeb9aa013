"""The Stable-Baselines3 layer: equivariant DQN, QR-DQN and actor-critic (PPO, A2C) policies, extractors,
callbacks, training and transfer."""

from equirl.agents.actor_critic import EquiActorCriticPolicy
from equirl.agents.callbacks import GroupWeightLogger
from equirl.agents.export import export_onnx
from equirl.agents.extractors import SmallKernelCNN
from equirl.agents.hyperparams import load_hyperparams, split_hyperparams
from equirl.agents.io import load_agent, save_agent
from equirl.agents.policies import EquiDQNPolicy, EquiQNetwork
from equirl.agents.symmetrised import load_plain_weights
from equirl.agents.training import (
    ALL_METHODS,
    PLAIN,
    CheckpointCallback,
    EvalCSVCallback,
    TrainResult,
    build_agent,
    build_dqn,
    evaluate,
    latest_checkpoint,
    read_metadata,
    train,
)
from equirl.agents.transfer import (
    TransferError,
    TransferRun,
    check_compatible,
    equivariant_from_pretrained,
    fit_lambda,
    freeze_backbone,
    load_pretrained,
    run_transfer,
)

__all__ = [
    "EquiDQNPolicy",
    "EquiQNetwork",
    "EquiQRDQNPolicy",
    "EquiQuantileNetwork",
    "EquiActorCriticPolicy",
    "load_plain_weights",
    "save_agent",
    "load_agent",
    "GroupWeightLogger",
    "export_onnx",
    "SmallKernelCNN",
    "load_hyperparams",
    "split_hyperparams",
    "ALL_METHODS",
    "PLAIN",
    "EvalCSVCallback",
    "TrainResult",
    "build_agent",
    "build_dqn",
    "evaluate",
    "train",
    "CheckpointCallback",
    "latest_checkpoint",
    "read_metadata",
    "TransferError",
    "TransferRun",
    "check_compatible",
    "equivariant_from_pretrained",
    "fit_lambda",
    "freeze_backbone",
    "load_pretrained",
    "run_transfer",
]


_LAZY = {"EquiQRDQNPolicy": "equirl.agents.qrdqn", "EquiQuantileNetwork": "equirl.agents.qrdqn"}
"""Exports whose module needs an optional extra (sb3-contrib for QR-DQN): imported on first use."""


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
