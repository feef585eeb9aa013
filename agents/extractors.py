"""Features extractors for small images (SB3's NatureCNN needs at least 36x36 inputs)."""

from __future__ import annotations

from collections.abc import Sequence

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

__all__ = ["SmallKernelCNN"]


class SmallKernelCNN(BaseFeaturesExtractor):
    """Three 2x2 convolutions then a linear layer, for small channel-first images (MiniGrid 7x7).

    :param observation_space: a channel-first Box ``(C, H, W)`` with ``H, W >= len(channels) + 1``.
    :param features_dim: output size.
    :param channels: output channels of each 2x2 convolution.
    ``forward(obs [B, C, H, W] float) -> [B, features_dim]``.
    """

    def __init__(
        self, observation_space: spaces.Box, features_dim: int = 128, channels: Sequence[int] = (16, 32, 64)
    ) -> None:
        super().__init__(observation_space, features_dim)
        if len(observation_space.shape) != 3:
            raise ValueError(
                f"SmallKernelCNN expects channel-first images (C, H, W), got shape {observation_space.shape}."
            )
        c, h, w = observation_space.shape
        if min(h, w) < len(channels) + 1:
            raise ValueError(
                f"SmallKernelCNN with {len(channels)} 2x2 convolutions needs images of at least "
                f"{len(channels) + 1}x{len(channels) + 1}, got {h}x{w}."
            )
        layers: list[nn.Module] = []
        prev = c
        for ch in channels:
            layers += [nn.Conv2d(prev, ch, kernel_size=2), nn.ReLU()]
            prev = ch
        layers.append(nn.Flatten())
        self.cnn = nn.Sequential(*layers)
        with th.no_grad():
            n_flat = self.cnn(th.zeros(1, *observation_space.shape)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flat, features_dim), nn.ReLU())

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.linear(self.cnn(observations))
