"""Environments and their symmetries: the catalogue, wrappers, the RotGrid gridworld and the lockstep verifier.

Typical use::

    from equirl import envs
    env = envs.make_env("MiniGrid-Empty-8x8-v0")      # wrapped for SB3 (one-hot, channel-first)
    sym = envs.get_symmetry("MiniGrid-Empty-8x8-v0")  # the symmetry that fits it
    print(envs.verify_symmetry("MiniGrid-Empty-8x8-v0"))
"""

from equirl.envs.catalog import (
    MINIGRID_IDS,
    catalogue_table,
    get_symmetry,
    list_symmetries,
    make_env,
    register_env,
    register_minigrid,
    register_symmetry,
    symmetry_docs,
)
from equirl.envs.gridworld import ROTGRID_IDS, RotGridEnv, rotgrid_symmetry
from equirl.envs.mappers import (
    StateMapper,
    get_state_mapper,
    list_state_mappers,
    mapper_from_generators,
    register_state_mapper,
)
from equirl.envs.recording import record_frames, record_gif
from equirl.envs.verify import Mismatch, VerificationReport, verify_symmetry

__all__ = [
    "MINIGRID_IDS",
    "ROTGRID_IDS",
    "Mismatch",
    "RotGridEnv",
    "StateMapper",
    "VerificationReport",
    "catalogue_table",
    "get_state_mapper",
    "get_symmetry",
    "list_state_mappers",
    "list_symmetries",
    "make_env",
    "mapper_from_generators",
    "record_frames",
    "record_gif",
    "register_env",
    "register_minigrid",
    "register_state_mapper",
    "register_symmetry",
    "rotgrid_symmetry",
    "symmetry_docs",
    "verify_symmetry",
]
