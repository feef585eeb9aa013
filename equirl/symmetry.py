"""A symmetry: a finite group with its action on inputs and its action on outputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from equirl.actions import Action
from equirl.groups import Group

__all__ = ["Symmetry"]


@dataclass(frozen=True, eq=False)
class Symmetry:
    """A group ``G`` with its action on inputs (``g·x``) and on outputs (``ρ(g)``).

    Small, picklable and printable; it is the one object that every consumer (Q-networks,
    verifiers, classifiers, language models) shares.

    :param group: the finite group.
    :param input_action: how ``g`` acts on an input sample.
    :param output_action: how ``g`` acts on an output (``TrivialAction`` for invariant outputs).
    :param name: a label, for example ``"CartPole-v1 reflection"``.
    :param description: one line for humans on what the group does to inputs and outputs.
    """

    group: Group
    input_action: Action
    output_action: Action
    name: str = ""
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for what, action in (("input_action", self.input_action), ("output_action", self.output_action)):
            if not isinstance(action, Action):
                raise TypeError(f"Symmetry.{what} must be an equirl Action, got {type(action).__name__}.")
            if action.group != self.group:
                raise ValueError(
                    f"Symmetry {self.name!r}: {what} is an action of {action.group.name}, "
                    f"but the symmetry's group is {self.group.name}."
                )

    @property
    def order(self) -> int:
        """``|G|``."""
        return self.group.order

    def validate(self, input_shape: Sequence[int], output_shape: Sequence[int]) -> None:
        """Raise a ValueError unless the actions fit samples of these shapes (no batch dims)."""
        try:
            self.input_action.validate(tuple(input_shape))
        except ValueError as err:
            raise ValueError(
                f"Symmetry {self.name!r} does not fit inputs of shape {tuple(input_shape)}: {err}"
            ) from err
        try:
            self.output_action.validate(tuple(output_shape))
        except ValueError as err:
            raise ValueError(
                f"Symmetry {self.name!r} does not fit outputs of shape {tuple(output_shape)}: {err}"
            ) from err

    FORMAT = "equirl.symmetry/1"

    def to_dict(self) -> dict[str, Any]:
        """The symmetry as JSON-able data: the group (elements' names, generators, Cayley table) and each
        action by its kind and the images of the generators (signs included).

        :raises TypeError: when an action has no data form (it names the class and how to register one).
        """
        return {
            "format": self.FORMAT,
            "name": self.name,
            "description": self.description,
            "group": self.group.to_dict(),
            "input_action": self.input_action.to_dict(),
            "output_action": self.output_action.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Symmetry:
        """The symmetry :meth:`to_dict` wrote; a clear error for another format or a missing field."""
        if not isinstance(data, dict):
            raise TypeError(f"Symmetry.from_dict: expected a mapping, got {type(data).__name__}.")
        if data.get("format") != cls.FORMAT:
            raise ValueError(f"Symmetry.from_dict: expected format {cls.FORMAT!r}, got {data.get('format')!r}.")
        missing = [k for k in ("group", "input_action", "output_action") if k not in data]
        if missing:
            raise ValueError(f"Symmetry.from_dict: missing {missing}.")
        group = Group.from_dict(data["group"])
        return cls(
            group,
            Action.from_dict(data["input_action"], group),
            Action.from_dict(data["output_action"], group),
            name=str(data.get("name", "")),
            description=str(data.get("description", "")),
        )

    def __repr__(self) -> str:
        label = f"{self.name!r}, " if self.name else ""
        return (
            f"Symmetry({label}{self.group.name}, elements={self.group.element_names}, "
            f"input={self.input_action!r}, output={self.output_action!r})"
        )
