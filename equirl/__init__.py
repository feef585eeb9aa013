"""equirl: exact equivariance for pretrained networks by group averaging.

The core depends on torch and numpy only. A symmetry is data (:class:`Symmetry`: a
:class:`Group` and its actions on inputs and outputs); one averaging implementation serves
equitune, equizero and λ-equitune (:func:`symmetrize`, :class:`GroupAveraged`).
"""

from equirl.actions import (
    Action,
    ComposedAction,
    DictAction,
    IndexAction,
    PermutationAction,
    PositionValuePermutationAction,
    SignedPermutationAction,
    SignFlipAction,
    SpatialAction,
    TrivialAction,
    ValuePermutationAction,
)
from equirl.averaging import (
    METHODS,
    ONLINE_SELECTED_TARGET,
    GroupAveraged,
    LambdaReducer,
    MeanReducer,
    Reducer,
    ZeroReducer,
    ZeroTDReducer,
    equivariance_error,
    make_reducer,
    reduce_orbit,
    reduce_orbit_weights,
    symmetrize,
    symmetrize_weights,
    weight_entropy,
)
from equirl.config import EquivarianceConfig
from equirl.groups import Group, cyclic, dihedral, direct_product, permutation_group, trivial_group
from equirl.proxy import PROXY_LOSSES
from equirl.symmetry import Symmetry

__version__ = "0.1.0"

__all__ = [
    "Action",
    "ComposedAction",
    "IndexAction",
    "PermutationAction",
    "SignedPermutationAction",
    "DictAction",
    "PositionValuePermutationAction",
    "SignFlipAction",
    "SpatialAction",
    "TrivialAction",
    "ValuePermutationAction",
    "METHODS",
    "ONLINE_SELECTED_TARGET",
    "GroupAveraged",
    "LambdaReducer",
    "MeanReducer",
    "Reducer",
    "ZeroReducer",
    "ZeroTDReducer",
    "equivariance_error",
    "make_reducer",
    "reduce_orbit",
    "reduce_orbit_weights",
    "symmetrize",
    "symmetrize_weights",
    "weight_entropy",
    "EquivarianceConfig",
    "Group",
    "cyclic",
    "dihedral",
    "direct_product",
    "permutation_group",
    "trivial_group",
    "PROXY_LOSSES",
    "Symmetry",
]
