"""Transfer of pretrained Q-networks: any SB3 DQN made equivariant, evaluated zero-shot and finetuned.

The paper's question for deep Q-learning: given a Q-network ``Q`` pretrained without symmetry, how
good is ``Q_G(s) = Σ_g w_g(s) ρ(g)⁻¹ Q(g·s)`` on the original task and on its transformed variants,
zero-shot and after finetuning, for equitune, equizero and λ-equitune?

- :func:`equivariant_from_pretrained` takes a DQN (zip path or loaded model, trained with SB3's
  ``MlpPolicy``/``CnnPolicy`` or anything with the same ``q_net`` layout) and returns a new DQN whose
  Q-network is that network symmetrised (:class:`agents.EquiDQNPolicy`), the pretrained weights
  copied, the target network equal to the online network. A pretrained QR-DQN, PPO or A2C gives the
  equivariant model of the same algorithm (:class:`agents.EquiQRDQNPolicy`,
  :class:`agents.EquiActorCriticPolicy`) with its weights (:func:`equirl.agents.load_plain_weights`).
- :func:`fit_lambda` is λ-equitune's first stage: the backbone frozen, only the λ-net learns, by
  SB3's own DQN loss (TD error against the symmetrised target network) on transitions of the task.
- :func:`run_transfer` does one (task, method, seed) cell of the experiment: zero-shot return, then a
  finetuning curve (λ-equitune: fit λ first, inside the same budget).

Why the TD loss fits λ (and not "maximise the value proxy"): with the backbone frozen, each view
``ρ(g)⁻¹ Q(g·s)`` is a fixed Q-function, and λ chooses a state-dependent mixture of them. The TD
loss scores the mixture against rewards actually observed on the task, so λ moves towards the views
whose values are consistent with the task's returns. Maximising ``Σ_g w_g max_a Q(g·s, a)`` needs no
reward but rewards over-estimation: it learns "equizero" at best, and prefers any view whose value is
optimistic even when it is wrong. The TD loss is also the loss that finetuning continues with, so the
two stages optimise one objective.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from equirl.agents.hyperparams import pretrained_path
from equirl.agents.io import SpacesOnlyEnv
from equirl.agents.policies import EquiDQNPolicy, EquiQNetwork, check_equivariance_args
from equirl.agents.training import (
    ALL_METHODS,
    PLAIN,
    EvalCSVCallback,
    FiniteQCallback,
    check_logging_extras,
    checked,
)
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.type_aliases import TrainFreq
from stable_baselines3.common.vec_env import DummyVecEnv

from equirl import EquivarianceConfig, Symmetry

__all__ = [
    "TransferError",
    "load_pretrained",
    "check_compatible",
    "equivariant_from_pretrained",
    "freeze_backbone",
    "fit_lambda",
    "TransferRun",
    "run_transfer",
    "q_values",
]

EnvFactory = Callable[[], gym.Env]

# DQN constructor arguments read off a pretrained model (the finetuning run keeps them unless overridden).
_DQN_ATTRS = (
    "learning_rate",
    "buffer_size",
    "learning_starts",
    "batch_size",
    "tau",
    "gamma",
    "gradient_steps",
    "target_update_interval",
    "exploration_fraction",
    "exploration_initial_eps",
    "exploration_final_eps",
    "max_grad_norm",
)
# Policy constructor parameters that are spaces, schedules or algorithm arguments (use_sde), not policy_kwargs.
_NOT_POLICY_KWARGS = ("observation_space", "action_space", "lr_schedule", "use_sde")


class TransferError(ValueError):
    """A pretrained model that does not fit the symmetry (or environment) it is asked to transfer to."""


def load_pretrained(
    model_or_path: BaseAlgorithm | str | Path,
    device: str = "cpu",
    *,
    trusted: bool = False,
    env: gym.Env | Any | None = None,
    symmetry: Symmetry | None = None,
    **read_kwargs: Any,
) -> Any:
    """A DQN, QR-DQN, PPO or A2C from a shipped agent's name (``"cartpole_plain"``, see
    :func:`equirl.agents.hyperparams.list_pretrained`), a saved agent folder, an SB3 zip, or the model itself.

    Nothing in a file is unpickled by default: a shipped name or agent folder is read by
    :func:`equirl.agents.load_agent` (JSON + safetensors), and an SB3 zip by
    :func:`equirl.agents.io.read_sb3_zip` (weights with ``torch.load(weights_only=True)``, the algorithm from
    the weights' layout or ``algorithm=...``, the rest from the JSON's readable fields; ``env``, ``symmetry``
    and ``read_kwargs`` supply what cannot be read safely, and the error says which). ``trusted=True`` loads
    a zip with SB3's own ``load`` of its algorithm, which unpickles the objects stored in it and so runs any
    code they carry: only for files you made yourself.
    """
    from equirl.agents.algorithms import algorithm_of

    if isinstance(model_or_path, BaseAlgorithm):
        algorithm_of(model_or_path)  # a clear TypeError for an algorithm equirl does not support
        return model_or_path
    from equirl.agents.io import AgentFormatError, is_agent_dir, load_agent, read_sb3_zip, zip_algorithm

    path = pretrained_path(model_or_path)
    try:
        if is_agent_dir(path):
            return load_agent(path, device=device)
        if trusted:
            algo = zip_algorithm(path, read_kwargs.get("algorithm"))
            return algo.model_class().load(path, device=device)
        return read_sb3_zip(path, env, symmetry=symmetry, device=device, **read_kwargs)
    except AgentFormatError as err:
        raise TransferError(str(err)) from err
    except (TypeError, ValueError) as err:
        raise TransferError(f"Could not load {path} as an agent: {err}") from err
    except Exception as err:  # noqa: BLE001 - re-raised with the path
        if not trusted:
            raise
        raise TransferError(f"Could not load {path} as a Stable-Baselines3 model: {err}") from err


def _describe(model_or_path: BaseAlgorithm | str | Path) -> str:
    return (
        str(model_or_path)
        if not isinstance(model_or_path, BaseAlgorithm)
        else f"the given {type(model_or_path).__name__}"
    )


def check_compatible(model: DQN, symmetry: Symmetry, source: str = "the pretrained model") -> None:
    """Raise :class:`TransferError` unless ``symmetry`` acts on ``model``'s observations and actions.

    The observation space checked is the one the Q-network sees (after SB3's image transpose).
    """
    obs_space, act_space = model.observation_space, model.action_space
    try:
        check_equivariance_args(symmetry, "equitune", obs_space, act_space)
    except (TypeError, ValueError) as err:
        n = getattr(act_space, "n", None)
        raise TransferError(
            f"{source} does not fit the symmetry {symmetry.name or symmetry!r}: the model has observation space "
            f"{obs_space} and action space {act_space} (n={n}); the symmetry {symmetry.group.name} expects "
            f"what its actions validate. Underlying error: {err}. Pick the symmetry of the environment the model "
            "was trained on (envs.get_symmetry(env_id))."
        ) from err


def _dqn_kwargs_of(model: DQN) -> dict[str, Any]:
    kw = {k: getattr(model, k) for k in _DQN_ATTRS if hasattr(model, k)}
    tf = model.train_freq  # SB3 converts it to a TrainFreq during setup
    assert isinstance(tf, TrainFreq), f"unexpected train_freq {tf!r}"
    kw["train_freq"] = (int(tf.frequency), tf.unit.value)
    return kw


def _policy_kwargs_of(model: BaseAlgorithm) -> dict[str, Any]:
    params = model.policy._get_constructor_parameters()
    if hasattr(model.policy, "share_features_extractor"):  # an actor-critic argument SB3 does not list
        params["share_features_extractor"] = model.policy.share_features_extractor
    for k in _NOT_POLICY_KWARGS:
        params.pop(k, None)
    # an equivariant source keeps its own symmetry arguments only if the caller does not replace them
    for k in ("symmetry", "equivariance", *EquivarianceConfig.field_names()):
        params.pop(k, None)
    return params


def equivariant_from_pretrained(
    model_or_path: BaseAlgorithm | str | Path,
    symmetry: Symmetry | None,
    method: str = "lambda",
    env: gym.Env | Any | None = None,
    hyperparams: dict[str, Any] | None = None,
    seed: int | None = None,
    device: str = "cpu",
    tensorboard_log: str | None = None,
    trusted: bool = False,
    **equivariant_kwargs: Any,
) -> Any:
    """A new SB3 DQN whose Q-network is the pretrained one symmetrised with ``method`` (or, for a pretrained
    QR-DQN, PPO or A2C, a new model of that algorithm with its equivariant policy and the pretrained weights).

    :param model_or_path: an SB3 DQN or the path of its zip (any policy with SB3's ``QNetwork``
        layout: ``MlpPolicy``, ``CnnPolicy``, custom extractors, or an :class:`EquiDQNPolicy`); or a QR-DQN,
        PPO or A2C (model, zip, or saved agent folder) with SB3's own policy layout: the result is a
        QRDQN with :class:`EquiQRDQNPolicy` (target network = online network) or a PPO / A2C with
        :class:`EquiActorCriticPolicy`, equal to the pretrained network group-averaged (equitune; λ starts
        as equitune) and exactly equivariant. ``hyperparams`` then takes that algorithm's arguments.
    :param symmetry: the group acting on the model's observations (as its Q-network sees them) and
        actions; may be None for ``method="plain"``.
    :param method: ``"plain"`` (a copy of the pretrained DQN, for baselines), ``"equitune"``,
        ``"equizero"`` or ``"lambda"``.
    :param env: the environment to finetune on (optional: without it the model predicts and evaluates;
        ``set_env`` before ``learn``). Its spaces must equal the pretrained model's.
    :param hyperparams: DQN arguments that replace the pretrained model's for finetuning (exploration,
        learning rate, ``learning_starts``, ...); keys not accepted by ``DQN`` are an error.
    :param seed: seed of the new DQN (exploration and replay sampling).
    :param trusted: read an SB3 zip with SB3's own loader, which unpickles (and so runs) whatever the
        file holds; by default the zip is read without unpickling (see :func:`load_pretrained`).
    :param equivariant_kwargs: :class:`EquiDQNPolicy` arguments (``proxy_loss``, ``lambda_hidden``, ...).
    :return: a DQN with the pretrained ``features_extractor.*`` and ``q_net.*`` weights, a fresh
        λ-net (zero last layer: untrained λ-equitune equals equitune), ``q_net_target`` equal to
        ``q_net``, and an optimizer over all parameters.
    :raises TransferError: when the model's spaces do not fit the symmetry or the environment.
    """
    if method not in ALL_METHODS:
        raise ValueError(f"Unknown method {method!r}; expected one of {ALL_METHODS}.")
    source = _describe(model_or_path)
    pre = load_pretrained(model_or_path, device=device, trusted=trusted, env=env, symmetry=symmetry)
    if not isinstance(pre, DQN):
        return _equivariant_other_algorithm(
            pre, symmetry, method, env, hyperparams, seed, device, tensorboard_log, source, equivariant_kwargs
        )
    if method != PLAIN:
        if symmetry is None:
            raise ValueError(f"method={method!r} needs a symmetry (for example envs.get_symmetry(env_id)).")
        check_compatible(pre, symmetry, source)
    policy_kwargs = _policy_kwargs_of(pre)
    dqn_kwargs = _dqn_kwargs_of(pre)
    dqn_kwargs.update(hyperparams or {})
    target_env = env if env is not None else SpacesOnlyEnv(pre.observation_space, pre.action_space)
    policy: Any
    if method == PLAIN:
        policy = type(pre.policy)
        if isinstance(pre.policy, EquiDQNPolicy):
            policy_kwargs.update(symmetry=pre.policy.symmetry, equivariance=pre.policy.equivariance)
    else:
        policy = EquiDQNPolicy
        policy_kwargs.update(equivariant_kwargs)
        policy_kwargs.update(symmetry=symmetry, method=method)
    new = DQN(
        policy,
        target_env,
        policy_kwargs=policy_kwargs,
        seed=seed,
        device=device,
        tensorboard_log=tensorboard_log,
        **dqn_kwargs,
    )
    if new.observation_space != pre.observation_space or new.action_space != pre.action_space:
        raise TransferError(
            f"The environment's spaces ({new.observation_space}, {new.action_space}) differ from those "
            f"{source} was trained on ({pre.observation_space}, {pre.action_space})."
        )
    _copy_q_weights(pre, new)
    return new


def _equivariant_other_algorithm(
    pre: BaseAlgorithm,
    symmetry: Symmetry | None,
    method: str,
    env: gym.Env | Any | None,
    hyperparams: dict[str, Any] | None,
    seed: int | None,
    device: str,
    tensorboard_log: str | None,
    source: str,
    equivariant_kwargs: dict[str, Any],
) -> BaseAlgorithm:
    """:func:`equivariant_from_pretrained` for a QR-DQN, PPO or A2C: the same algorithm with its equivariant
    policy (from :mod:`equirl.agents.algorithms`), the pretrained weights loaded by
    :func:`~equirl.agents.symmetrised.load_plain_weights` (a QR-DQN's target network set to the online one)."""
    from equirl.agents.algorithms import algorithm_of
    from equirl.agents.io import algorithm_kwargs
    from equirl.agents.symmetrised import SymmetrisedModule, load_plain_weights

    algo = algorithm_of(pre)
    policy_kwargs = _policy_kwargs_of(pre)
    kwargs = algorithm_kwargs(pre)
    kwargs.update(hyperparams or {})
    policy: Any
    if method == PLAIN:
        policy = type(pre.policy)
        if isinstance(pre.policy, SymmetrisedModule):
            policy_kwargs.update(symmetry=pre.policy.symmetry, equivariance=pre.policy.equivariance)
    else:
        if symmetry is None:
            raise ValueError(f"method={method!r} needs a symmetry (for example envs.get_symmetry(env_id)).")
        policy = algo.policy_class()
        policy_kwargs.update(equivariant_kwargs)
        policy_kwargs.update(symmetry=symmetry, method=method)
    target_env = (
        env
        if env is not None
        else DummyVecEnv([lambda: SpacesOnlyEnv(pre.observation_space, pre.action_space)] * pre.n_envs)
    )
    try:
        new = algo.model_class()(
            policy, target_env, policy_kwargs=policy_kwargs, seed=seed, device=device,
            tensorboard_log=tensorboard_log, **kwargs,
        )  # fmt: skip
    except (TypeError, ValueError) as err:
        raise TransferError(
            f"{source} ({algo.class_name}, observation space {pre.observation_space}, action space "
            f"{pre.action_space}) cannot be made equivariant with {symmetry.name if symmetry else None!r}: {err}. "
            "Pick the symmetry of the environment the model was trained on (envs.get_symmetry(env_id))."
        ) from err
    if new.observation_space != pre.observation_space or new.action_space != pre.action_space:
        raise TransferError(
            f"The environment's spaces ({new.observation_space}, {new.action_space}) differ from those "
            f"{source} was trained on ({pre.observation_space}, {pre.action_space})."
        )
    state = {k: v for k, v in pre.policy.state_dict().items() if "reducer." not in k}
    try:
        load_plain_weights(new.policy, state)
    except ValueError as err:
        raise TransferError(f"{source}: {err}") from err
    if hasattr(new.policy, "quantile_net_target"):  # QR-DQN: the target starts as the online network
        new.policy.quantile_net_target.load_state_dict(new.policy.quantile_net.state_dict())
        new.policy.quantile_net_target.set_training_mode(False)
    return new


def _copy_q_weights(pre: DQN, new: DQN) -> None:
    """Copy ``pre.q_net`` into ``new.q_net`` (all but the reducer), then ``new.q_net_target`` <- ``new.q_net``."""
    src = pre.policy.q_net.state_dict()
    src = {k: v for k, v in src.items() if not k.startswith("reducer.")}
    dst_net = new.policy.q_net
    missing, unexpected = dst_net.load_state_dict(src, strict=False)
    bad_missing = [k for k in missing if not k.startswith("reducer.")]
    if bad_missing or unexpected:
        raise TransferError(
            "The pretrained Q-network's layout differs from the new one: "
            f"missing {bad_missing}, unexpected {list(unexpected)}."
        )
    new.policy.q_net_target.load_state_dict(dst_net.state_dict())
    new.policy.q_net_target.set_training_mode(False)


def freeze_backbone(model: DQN, frozen: bool = True) -> list[str]:
    """Freeze (or unfreeze) everything in ``q_net`` and ``q_net_target`` but the reducer (the λ-net).

    Frozen parameters get no gradient, so SB3's Adam skips them. Returns the names of the parameters
    that still train.
    """
    trainable = []
    for net in (model.policy.q_net, model.policy.q_net_target):
        for name, p in net.named_parameters():
            p.requires_grad_(name.startswith("reducer.") or not frozen)
            if p.requires_grad and net is model.policy.q_net:
                trainable.append(name)
    return trainable


def fit_lambda(
    model: DQN,
    total_timesteps: int,
    callback: BaseCallback | list[BaseCallback] | None = None,
    progress_bar: bool = False,
    tb_log_name: str = "lambda_fit",
) -> DQN:
    """λ-equitune's first stage: ``total_timesteps`` of DQN training with only the λ-net learning.

    The objective is SB3's DQN loss (Huber TD error against the symmetrised target network, the
    target network synchronised every ``target_update_interval`` steps as usual); with the backbone
    frozen its only free parameters are λ's. The backbone is unfrozen afterwards; the replay buffer
    and step counter carry on into finetuning (``learn(..., reset_num_timesteps=False)``).
    """
    q_net = model.policy.q_net
    if not isinstance(q_net, EquiQNetwork) or q_net.method != "lambda":
        raise ValueError("fit_lambda needs a λ-equitune DQN (equivariant_from_pretrained(..., method='lambda')).")
    freeze_backbone(model, True)
    try:
        if total_timesteps > 0:
            model.learn(total_timesteps, callback=callback, progress_bar=progress_bar, tb_log_name=tb_log_name)
    finally:
        freeze_backbone(model, False)
    return model


@dataclass
class TransferRun:
    """One (task, method, seed) of a transfer experiment.

    ``zero_shot``: mean greedy return before any step of the task (true zero-shot, every method; λ-equitune
    with its initial λ-net, whose zero last layer gives every view the weight 1/|G|: exactly equitune).
    ``curve``: rows ``{timesteps, mean_return, std_return, wall_seconds, ...}`` with ``timesteps`` = task
    steps used so far (the budget K), the first at K = 0; λ-equitune's :func:`fit_lambda` steps
    (``lambda_fit_steps``) are the first task steps of its budget and are evaluated on the same schedule.
    """

    task: str
    method: str
    seed: int
    zero_shot: float
    zero_shot_std: float
    curve: list[dict[str, float]] = field(default_factory=list)
    lambda_fit_steps: int = 0
    seconds: float = 0.0

    @property
    def final(self) -> float:
        return self.curve[-1]["mean_return"] if self.curve else self.zero_shot


def run_transfer(
    pretrained: DQN | str | Path,
    symmetry: Symmetry | None,
    method: str,
    env_factory: EnvFactory,
    finetune_steps: int,
    seed: int = 0,
    task: str = "",
    lambda_fit_steps: int = 0,
    eval_freq: int | None = None,
    n_eval_episodes: int = 10,
    hyperparams: dict[str, Any] | None = None,
    progress_bar: bool = False,
    equivariant_kwargs: dict[str, Any] | None = None,
    trusted: bool = False,
    tensorboard_log: str | Path | None = None,
    log_dir: str | Path | None = None,
) -> TransferRun:
    """True zero-shot evaluation (K = 0) then finetuning of the pretrained agent made equivariant with ``method``.

    :param env_factory: ``() -> gym.Env`` of the task (training and evaluation use separate instances).
    :param finetune_steps: environment steps of the task in total (λ-equitune: fit + finetune).
    :param lambda_fit_steps: steps of :func:`fit_lambda` (λ-equitune only), the first of ``finetune_steps``
        (0: no frozen-backbone stage).
    :param eval_freq: evaluate every this many task steps, λ's fit included (default: 5 points), and at the end
        of λ's fit and of the budget.
    :param hyperparams: finetuning DQN arguments (see :func:`equivariant_from_pretrained`).
    :param trusted: read an SB3 zip with SB3's unpickling loader (see :func:`load_pretrained`).
    :param tensorboard_log: tensorboard folder (needs the ``train`` extra): the run logs into
        ``<tensorboard_log>/<method>_s<seed>_<n>`` (λ's fitting stage and the finetuning in one run), with every
        evaluation, the zero-shot one included, as ``eval/mean_reward`` / ``eval/mean_ep_length`` at its step.
    :param log_dir: folder for ``eval.csv`` and ``evaluations.npz`` of this run (default: none).
    Evaluation episodes use seed ``10_000 + seed`` (the same starts for every method).
    """
    from stable_baselines3.common.utils import configure_logger

    check_logging_extras(tensorboard_log, progress_bar)
    start = time.perf_counter()
    env = checked(DummyVecEnv([lambda: Monitor(env_factory())]))  # NaN/inf observations or rewards stop it
    model = equivariant_from_pretrained(
        pretrained,
        symmetry,
        method,
        env=env,
        hyperparams=hyperparams,
        seed=seed,
        trusted=trusted,
        **(equivariant_kwargs or {}),
    )
    # One logger for the whole run, so that λ's fitting stage, the zero-shot point and finetuning share a folder.
    tb_name = f"{method}_s{seed}"
    model.set_logger(configure_logger(0, str(tensorboard_log) if tensorboard_log else None, tb_name, True))
    eval_seed = 10_000 + seed
    log = Path(log_dir) if log_dir else None
    evaluator = EvalCSVCallback(
        env_factory,
        eval_freq or max(1, finetune_steps // 5),
        log / "eval.csv" if log else None,
        n_episodes=n_eval_episodes,
        seed=eval_seed,
    )
    evaluator.init_callback(model)
    evaluator._evaluate_now()  # K = 0: true zero-shot, no step of the task yet (λ-equitune: its initial λ-net)
    zs = evaluator.rows[0]
    fit = 0
    if method == "lambda" and lambda_fit_steps > 0 and finetune_steps > 0:
        fit = min(lambda_fit_steps, finetune_steps)
        # evaluated on the same schedule as finetuning: the fit's steps are task steps inside the budget K
        fit_lambda(model, fit, callback=evaluator, progress_bar=progress_bar, tb_log_name=tb_name)
    remaining = finetune_steps - model.num_timesteps  # SB3 ends a learn() call at a rollout's end, maybe past `fit`
    if remaining > 0:
        model.learn(
            remaining,
            callback=CallbackList([evaluator, FiniteQCallback()]),
            progress_bar=progress_bar,
            reset_num_timesteps=fit == 0,
            tb_log_name=tb_name,
        )
    curve = [{**zs, "wall_seconds": 0.0}, *evaluator.rows[1:]]
    return TransferRun(task, method, seed, zs["mean_return"], zs["std_return"], curve, fit, time.perf_counter() - start)


def q_values(model: DQN, obs: np.ndarray) -> np.ndarray:
    """Q-values ``[B, n_actions]`` of ``model`` for observations ``[B, ...]`` as the environment emits them."""
    t, _ = model.policy.obs_to_tensor(obs)
    with th.no_grad():
        return model.policy.q_net(t).cpu().numpy()  # type: ignore[no-any-return]
