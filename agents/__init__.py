"""The Stable-Baselines3 layer: equivariant DQN policies, extractors, callbacks, training and transfer."""

from agents.callbacks import GroupWeightLogger
from agents.extractors import SmallKernelCNN
from agents.hyperparams import load_hyperparams, split_hyperparams
from agents.policies import EquiDQNPolicy, EquiQNetwork
from agents.training import (
    ALL_METHODS,
    PLAIN,
    CheckpointCallback,
    EvalCSVCallback,
    TrainResult,
    build_dqn,
    evaluate,
    latest_checkpoint,
    read_metadata,
    train,
)
from agents.transfer import (
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
    "GroupWeightLogger",
    "SmallKernelCNN",
    "load_hyperparams",
    "split_hyperparams",
    "ALL_METHODS",
    "PLAIN",
    "EvalCSVCallback",
    "TrainResult",
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
