"""Environments and their symmetries: the catalogue, wrappers and the lockstep verifier."""

from envs.catalog import get_symmetry, list_symmetries, register_symmetry, symmetry_docs

__all__ = ["get_symmetry", "list_symmetries", "register_symmetry", "symmetry_docs"]
