"""Environments and their symmetries: the catalogue, wrappers, the RotGrid gridworld, the verifier and discovery.

Typical use::

    from equirl import envs
    env = envs.make_env("MiniGrid-Empty-8x8-v0")      # wrapped for SB3 (one-hot, channel-first)
    sym = envs.get_symmetry("MiniGrid-Empty-8x8-v0")  # the symmetry that fits it
    print(envs.verify_symmetry("MiniGrid-Empty-8x8-v0"))
"""

from equirl.envs.catalog import (
    MINIGRID_IDS,
    CatalogEntry,
    catalogue_table,
    get_entry,
    get_state_mapper,
    get_symmetry,
    list_state_mappers,
    list_symmetries,
    make_env,
    register_discovery,
    register_env,
    register_minigrid,
    register_state_mapper,
    register_symmetry,
    symmetry_docs,
    trivial_symmetry,
    unregister,
)
from equirl.envs.discover import DiscoveryReport, ObsStateCodec, WorldMaps, discover_symmetry
from equirl.envs.gridworld import ROTGRID_IDS, RotGridEnv, rotgrid_symmetry
from equirl.envs.mappers import StateMapper, mapper_from_generators
from equirl.envs.noisy import NOISY_CARTPOLE_ID, NoisyCartPoleEnv, register_noisy_envs
from equirl.envs.recording import record_frames, record_gif
from equirl.envs.verify import Mismatch, StatisticalReport, VerificationReport, verify_symmetry

register_noisy_envs()

__all__ = [
    "DiscoveryReport",
    "ObsStateCodec",
    "StatisticalReport",
    "WorldMaps",
    "discover_symmetry",
    "NOISY_CARTPOLE_ID",
    "NoisyCartPoleEnv",
    "MINIGRID_IDS",
    "ROTGRID_IDS",
    "Mismatch",
    "RotGridEnv",
    "StateMapper",
    "VerificationReport",
    "CatalogEntry",
    "catalogue_table",
    "get_entry",
    "unregister",
    "get_state_mapper",
    "get_symmetry",
    "list_state_mappers",
    "list_symmetries",
    "make_env",
    "mapper_from_generators",
    "record_frames",
    "record_gif",
    "register_env",
    "register_discovery",
    "register_minigrid",
    "register_state_mapper",
    "register_symmetry",
    "rotgrid_symmetry",
    "symmetry_docs",
    "trivial_symmetry",
    "verify_symmetry",
]
