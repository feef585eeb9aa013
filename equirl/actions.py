"""Actions of finite groups on batched tensors.

An action is declared by the images of the group's generators and extended to every element
through the group's words; construction checks that the images really define an action (that
they respect the group's relations). Every action works on a whole batch for all elements at once:

- ``orbit(x)``: ``x [*batch, *sample] -> [|G|, *batch, *sample]``, slice ``g`` holding ``g·x``;
- ``apply_each(y)``: ``y [|G|, ...] -> [|G|, ...]``, slice ``g`` transformed by ``g``;
- ``inverse_each(y)``: the same with ``g⁻¹`` (what group averaging needs on outputs);
- ``apply(g, x)``: one element on one batch.

The acted dimensions are given as negative indices counted from the end of a sample, so any
number of leading batch dimensions is allowed.

Index actions (spatial rot90/flips, sign flips, index permutations) are all *signed permutations*
of the flattened acted dimensions: ``out[n] = sign[g, n] * x[idx[g, n]]``. They are compiled once
per sample shape into index tables and applied with one gather, whatever ``|G|``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from equirl.groups import Group, _check_permutation

__all__ = [
    "Action",
    "IndexAction",
    "SpatialAction",
    "SignFlipAction",
    "PermutationAction",
    "SignedPermutationAction",
    "ValuePermutationAction",
    "TrivialAction",
    "ComposedAction",
    "PositionValuePermutationAction",
    "DictAction",
    "SPATIAL_OPS",
    "ACTION_KINDS",
    "register_action_kind",
    "action_to_dict",
    "action_from_dict",
    "weighted_sum",
]


def weighted_sum(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``weights [G, B]``, ``values [G, B, ...]`` -> ``Σ_g weights[g] · values[g]`` ``[B, ...]`` (in ``values``' dtype)."""
    w = weights.unsqueeze(-1) if values.dim() == 3 else weights.reshape(*weights.shape, *([1] * (values.dim() - 2)))
    if w.dtype != values.dtype:
        w = w.to(values.dtype)
    return (w * values).sum(0)


class Action:
    """Base class: an action of ``group`` on tensors. Subclasses implement the batched methods."""

    group: Group

    def __init__(self, group: Group) -> None:
        if not isinstance(group, Group):
            raise TypeError(f"{type(self).__name__}: expected an equirl Group, got {type(group).__name__}.")
        self.group = group
        self._cache: dict[Any, Any] = {}

    # pickling: the tensor caches are rebuilt on demand
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state

    def validate(self, sample_shape: Sequence[int]) -> None:
        """Raise a ValueError unless the action can act on samples of this shape (no batch dims)."""

    def orbit(self, x: torch.Tensor) -> torch.Tensor:
        """``x [*batch, *sample] -> [|G|, *batch, *sample]`` with slice ``g`` equal to ``g·x``."""
        return self.apply_each(x.unsqueeze(0).expand(self.group.order, *x.shape))

    def orbit_by_sample(self, x: torch.Tensor) -> torch.Tensor | None:
        """The orbit in sample-major order, ``x [B, *sample] -> [B, |G|, *sample]`` with ``[:, g]`` equal to ``g·x``,
        where this action builds it faster than :meth:`orbit` builds ``[|G|, B, ...]``; None where it does not (then
        use :meth:`orbit`)."""
        return None

    def apply_each(self, y: torch.Tensor) -> torch.Tensor:
        """``y [|G|, ...] -> [|G|, ...]`` with slice ``g`` transformed by ``g``."""
        raise NotImplementedError

    def inverse_each(self, y: torch.Tensor) -> torch.Tensor:
        """``y [|G|, ...] -> [|G|, ...]`` with slice ``g`` transformed by ``g⁻¹``."""
        return self.apply_each(y[torch.as_tensor(self.group.inverse_table, device=y.device)])[
            torch.as_tensor(self.group.inverse_table, device=y.device)
        ]

    def inverse_mean(self, y: torch.Tensor) -> torch.Tensor:
        """``y [|G|, ...] -> [...]``: the mean over ``g`` of ``g⁻¹`` applied to slice ``g`` (equitune's reduction).

        Equals ``inverse_each(y).mean(0)``; subclasses may compute it with fewer operations.
        """
        return self.inverse_each(y).mean(0)

    def inverse_weighted_sum(self, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``y [|G|, B, ...]``, ``weights [|G|, B]`` -> ``[B, ...]``: ``Σ_g weights[g] · g⁻¹·y[g]`` (what λ-equitune and
        equizero reduce with). Equals ``weighted_sum(weights, inverse_each(y))``; subclasses may compute it with fewer
        operations."""
        return weighted_sum(weights, self.inverse_each(y))

    def apply(self, g: int, x: torch.Tensor) -> torch.Tensor:
        """``g·x`` for one element index ``g`` and a batch ``x [*batch, *sample]``."""
        if not 0 <= g < self.group.order:
            raise IndexError(f"element {g} is not in {self.group.name} (order {self.group.order}).")
        full = x.unsqueeze(0).expand(self.group.order, *x.shape)
        return self.apply_each(full)[g]

    @property
    def acts_trivially(self) -> bool:
        """True when every element acts as the identity."""
        return False

    def to_dict(self) -> dict[str, Any]:
        """The action as JSON-able data (its kind and the images of the generators; the group is not
        included). See :func:`action_to_dict`."""
        return action_to_dict(self)

    @staticmethod
    def from_dict(data: dict[str, Any], group: Group) -> Action:
        """The action of ``group`` that :meth:`to_dict` wrote. See :func:`action_from_dict`."""
        return action_from_dict(data, group)


def _extend_over_words(action: Action, identity: np.ndarray, images: list[np.ndarray], compose: Any) -> np.ndarray:
    """Representations ``[|G|, ...]`` of every element from the images of the generators.

    ``compose(a, b)`` is the representation of ``a∘b`` (``b`` acts first). Element ``e = parent·gen``
    gets ``rep(parent)∘rep(gen)``; then every relation ``rep(a)∘rep(gen) == rep(a·gen)`` is checked,
    which holds for all ``a`` exactly when the images define an action of the group.
    """
    g = action.group
    if len(images) != len(g.generator_indices):
        raise ValueError(
            f"{type(action).__name__}: {g.name} has {len(g.generator_indices)} generators "
            f"({g.generator_names}) but {len(images)} images were given; give one per generator."
        )
    reps = np.empty((g.order, *identity.shape), dtype=identity.dtype)
    reps[0] = identity
    for e in range(1, g.order):
        gi = g.words[e][-1]
        parent = g.table[e, g.inverse_table[g.generator_indices[gi]]]
        reps[e] = compose(reps[parent], images[gi])
    for a in range(g.order):
        for gi, ge in enumerate(g.generator_indices):
            prod = g.table[a, ge]
            if not np.array_equal(compose(reps[a], images[gi]), reps[prod]):
                raise ValueError(
                    f"{action!r}: the images of the generators do not define an action of {g.name}: "
                    f"rep({g.element_names[a]})∘rep({g.generator_names[gi]}) differs from "
                    f"rep({g.element_names[prod]}). Check that the images satisfy the group's relations "
                    "(for example an order-2 element must map to an involution)."
                )
    return reps


class TrivialAction(Action):
    """Every element acts as the identity (invariant outputs, for example class logits).

    It acts on tensors and on dict batches (``{key: tensor}``, as :class:`DictAction` takes them) alike:
    ``orbit`` repeats every tensor ``|G|`` times along a new first dimension, ``inverse_mean`` averages it
    away, ``apply`` returns its input.
    """

    def apply_each(self, y: Any) -> Any:
        return y

    def inverse_each(self, y: Any) -> Any:
        return y

    def orbit(self, x: Any) -> Any:
        if isinstance(x, Mapping):
            return {k: self.orbit(v) for k, v in x.items()}
        return x.unsqueeze(0).expand(self.group.order, *x.shape)

    def inverse_mean(self, y: Any) -> Any:
        if isinstance(y, Mapping):
            return {k: v.mean(0) for k, v in y.items()}
        return y.mean(0)

    def apply(self, g: int, x: Any) -> Any:
        if not 0 <= g < self.group.order:
            raise IndexError(f"element {g} is not in {self.group.name} (order {self.group.order}).")
        return x

    @property
    def acts_trivially(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"TrivialAction({self.group.name})"


def _normalise_dims(dims: int | Sequence[int]) -> tuple[int, ...]:
    dims_t = (dims,) if isinstance(dims, int | np.integer) else tuple(int(d) for d in dims)
    if not dims_t or any(d >= 0 for d in dims_t):
        raise ValueError(
            f"dims must be negative indices counted from the end of a sample (e.g. -1 or (-2, -1)), got {dims!r}."
        )
    if list(dims_t) != list(range(dims_t[0], dims_t[0] + len(dims_t))):
        raise ValueError(f"dims must be contiguous and increasing, got {dims_t}.")
    return dims_t


class IndexAction(Action):
    """A signed permutation of the flattened acted dimensions ``dims``.

    Subclasses give the images of the generators for a given acted size by overriding
    :meth:`generator_images`, returning per generator ``(idx [N] int, sign [N] float or None)``
    meaning ``out[n] = sign[n] * x[idx[n]]``.
    """

    def __init__(self, group: Group, dims: int | Sequence[int]) -> None:
        super().__init__(group)
        self.dims = _normalise_dims(dims)

    # -- to override ------------------------------------------------------------------------
    def generator_images(self, size: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        raise NotImplementedError

    # -- tables ------------------------------------------------------------------------------
    def acted_size(self, sample_shape: Sequence[int]) -> tuple[int, ...]:
        """The sizes of the acted dims for a sample of this shape."""
        if len(sample_shape) < -self.dims[0]:
            raise ValueError(
                f"{self!r} acts on dims {self.dims} but samples have shape {tuple(sample_shape)} "
                f"(only {len(sample_shape)} dims)."
            )
        nd = len(sample_shape)
        return tuple(int(sample_shape[nd + d]) for d in self.dims)

    def validate(self, sample_shape: Sequence[int]) -> None:
        self.tables(self.acted_size(sample_shape))

    def tables(self, size: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray | None]:
        """Index table ``[|G|, N]`` and sign table ``[|G|, N]`` (or None) for acted sizes ``size``.

        Built from the generator images through the group's words, and checked to be an action.
        """
        key = ("np", size)
        if key in self._cache:
            return self._cache[key]  # type: ignore[no-any-return]
        gens = self.generator_images(size)
        n = int(np.prod(size)) if size else 1
        has_sign = any(s is not None for _, s in gens)
        # a signed permutation as one [2, N] float array: row 0 the index, row 1 the sign
        images = [
            np.stack([np.asarray(i, dtype=np.float64), np.ones(n) if s is None else np.asarray(s, dtype=np.float64)])
            for i, s in gens
        ]

        def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # a∘b: out[n] = sA[n] sB[iA[n]] x[iB[iA[n]]]
            ia = a[0].astype(np.int64)
            return np.stack([b[0][ia], a[1] * b[1][ia]])

        reps = _extend_over_words(self, np.stack([np.arange(n, dtype=np.float64), np.ones(n)]), images, compose)
        idx, sign = reps[:, 0].astype(np.int64), reps[:, 1]
        result = (idx, sign if has_sign else None)
        self._cache[key] = result
        return result

    def _plan(self, shape: Sequence[int], device: torch.device, dtype: torch.dtype, inverse: bool) -> _Plan:
        """Everything one batched application needs for tensors of this shape, cached.

        ``shape`` includes the leading group or batch dim; the plan depends on the number of dims,
        the acted and trailing sizes, the device and dtype, and whether ``g`` or ``g⁻¹`` is applied.
        """
        nd = len(shape)
        start, end = nd + self.dims[0], nd + self.dims[-1] + 1
        size, post = tuple(shape[start:end]), tuple(shape[end:])
        key = ("plan", nd, size, post, device, dtype, inverse)
        plan = self._cache.get(key)
        if plan is None:
            idx, sign = self.tables(size)
            if inverse:  # rep(g⁻¹) is row g⁻¹ of the tables
                idx = idx[self.group.inverse_table]
                sign = None if sign is None else sign[self.group.inverse_table]
            G, n = idx.shape
            view = (G, *([1] * (start - 1)), n, *([1] * len(post)))
            identity = bool(np.all(idx == np.arange(n)))
            sign_dtype = dtype if dtype.is_floating_point else torch.float32
            one_idx = one_sign = None
            if G == 2:  # the one non-identity element (its own inverse), for the involution fast path
                one_idx = None if identity else torch.as_tensor(idx[1], device=device)
                if sign is not None:
                    one_sign = torch.as_tensor(sign[1], device=device, dtype=sign_dtype).reshape(view[1:])
            plan = _Plan(
                start=start,
                one_idx=one_idx,
                one_sign=one_sign,
                flat=(n, *post) if len(size) > 1 else None,
                idx_flat=None if identity else torch.as_tensor(idx.reshape(-1), device=device),
                idx_view=None if identity else torch.as_tensor(idx, device=device).reshape(view),
                sign_view=None
                if sign is None
                else torch.as_tensor(sign, device=device, dtype=sign_dtype).reshape(view),
                sign_orbit=None
                if sign is None
                else torch.as_tensor(sign, device=device, dtype=sign_dtype).reshape(
                    (G, *([1] * (start - 1)), *size, *([1] * len(post)))
                ),
            )
            if _eager(plan.idx_flat, plan.sign_view):  # never cache tracer / fake tensors made while exporting
                self._cache[key] = plan
        return plan

    # -- batched application ----------------------------------------------------------------
    def _plan_for(self, x: torch.Tensor, inverse: bool, orbit: bool = False) -> _Plan:
        """:meth:`_plan` for ``x [|G|, ...]`` (applying ``g``, or ``g⁻¹`` when ``inverse``), or with ``orbit`` for
        the ``[|G|, *x.shape]`` orbit of ``x``; looked up by ``x``'s shape, device and dtype alone (one dict lookup)."""
        if torch.compiler.is_compiling():  # no lookup by shape: a dict that changes would make dynamo recompile
            return self._plan((self.group.order, *x.shape) if orbit else x.shape, x.device, x.dtype, inverse)
        key: tuple[Any, ...] | None = (x.shape, x.device, x.dtype, inverse, orbit)
        try:
            plan = self._cache.get(key)
        except TypeError:  # a symbolic shape (torch.export): no lookup by shape
            plan = None
            key = None
        if plan is None:
            plan = self._plan((self.group.order, *x.shape) if orbit else x.shape, x.device, x.dtype, inverse)
            if key is not None and _eager(plan.idx_flat, plan.sign_view) and len(self._cache) < _MAX_CACHED:
                self._cache[key] = plan
        return plan  # type: ignore[no-any-return]

    def orbit(self, x: torch.Tensor) -> torch.Tensor:
        # plan for the [G, *x.shape] result, acting with g
        p = self._plan_for(x, False, orbit=True)
        if p.idx_flat is None:  # sign flips only: one broadcast multiply ([G, 1.., N, 1..] * [*batch, N, ..])
            return x * p.sign_orbit if p.sign_orbit is not None else x.unsqueeze(0).expand(self.group.order, *x.shape)
        if self.group.order > 2 and x.dim() + self.dims[0] >= 1:
            flat = self._flat_orbit_table(x)
            if flat is not None:  # one index_select over the whole batch, in the [|G|, *x.shape] layout: no copy
                out = x.reshape(-1).index_select(0, flat.idx)
                if flat.sign is not None:
                    out = out.view(self.group.order, x.shape[0], -1) * flat.sign
                return out.view(self.group.order, *x.shape)
        axis = p.start - 1  # the acted axis in x (no group dim yet)
        if x.dim() >= 2 and axis + len(self.dims) != x.dim() or axis > 1:
            # other dims than the acted ones after the first (channels, trailing dims): one index table over
            # whole rows, so that the orbit is one index_select of long contiguous rows
            return self._orbit_rows(x)
        xf = x if p.flat is None else x.reshape(*x.shape[:axis], *p.flat)
        if self.group.order == 2:  # involution: [x, r·x], contiguous, in two ops
            out = torch.stack([xf, self._one(xf, axis, p)])
            return out if p.flat is None else out.reshape(2, *x.shape)
        out = xf.index_select(axis, p.idx_flat).unflatten(axis, (self.group.order, -1)).movedim(axis, 0)
        if p.sign_view is not None:
            out = out * p.sign_view
        return out if p.flat is None else out.reshape(self.group.order, *x.shape)

    def orbit_by_sample(self, x: torch.Tensor) -> torch.Tensor | None:
        """For |G| > 2 and a batch dim the action does not touch: one ``index_select`` of every row ``x[b]`` with the
        rows' table (:meth:`_row_tables`, |G|·row entries whatever the batch size), already in the ``[B, |G|, *row]``
        layout, with a small index where :meth:`orbit`'s whole-batch table has |G|·B·row entries (the overhead
        benchmark, docs/overhead.md, measures the gradient step it speeds up). None for |G| <= 2 (the involution path of :meth:`orbit` is as fast) and
        for sign flips alone (one broadcast multiply)."""
        if self.group.order <= 2 or x.dim() < 2:
            return None
        key = ("by-sample", x.shape, x.device, x.dtype)
        try:
            tables = self._cache.get(key, _MISSING)
        except TypeError:  # a symbolic shape (torch.export): no lookup by shape
            tables = self._by_sample_tables(x)
        if tables is _MISSING:
            tables = self._by_sample_tables(x)
            if (tables is None or _eager(*tables)) and len(self._cache) < _MAX_CACHED:
                self._cache[key] = tables
        if tables is None:
            return None
        idx, sign = tables
        G, B = self.group.order, x.shape[0]
        out = x.reshape(B, -1).index_select(1, idx)
        if sign is not None:
            out = out.view(B, G, -1) * sign
        return out.view(B, G, *x.shape[1:])

    def _by_sample_tables(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """``(index [|G|·M], signs [1, |G|, M] or None)`` of :meth:`orbit_by_sample` for rows shaped as ``x[0]``, or None
        where it declines (the acted dims include the batch dim; sign flips alone)."""
        if x.dim() + self.dims[0] < 1 or self._plan_for(x, False, orbit=True).idx_flat is None:
            return None
        t = self._row_tables(tuple(int(n) for n in x.shape[1:]), x.device, x.dtype)
        return t.idx, None if t.sign is None else t.sign.view(1, self.group.order, -1)

    def _row_tables(self, row_shape: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> _RowTables:
        """Index (and sign) tables of every element over whole rows ``x[b]`` of shape ``row_shape``, cached."""
        key = ("rows", row_shape, device, dtype)
        cached = self._cache.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        nd, G = len(row_shape), self.group.order
        s0, s1 = nd + self.dims[0], nd + self.dims[-1] + 1
        idx, sign = self.tables(tuple(row_shape[s0:s1]))  # [G, N]
        n_pre, n_post, n = int(np.prod(row_shape[:s0])), int(np.prod(row_shape[s1:])), idx.shape[1]
        # out[g, (p, a, q)] = x[(p, idx[g, a], q)]
        full = (np.arange(n_pre)[None, :, None, None] * n + idx[:, None, :, None]) * n_post + np.arange(n_post)
        full = full.reshape(G, -1)
        sign_dtype = dtype if dtype.is_floating_point else torch.float32
        signs = None
        if sign is not None:
            signs = np.broadcast_to(sign[:, None, :, None], (G, n_pre, n, n_post)).reshape(G, 1, -1)
        tables = _RowTables(
            idx=torch.as_tensor(full.reshape(-1), device=device),
            sign=None if signs is None else torch.as_tensor(signs, device=device, dtype=sign_dtype),
            one_idx=torch.as_tensor(full[1], device=device) if G == 2 else None,
        )
        if _eager(tables.idx, tables.sign):
            self._cache[key] = tables
        return tables

    def _flat_orbit_table(self, x: torch.Tensor) -> _RowTables | None:
        """The orbit of the whole batch ``x [B, *row]`` as one index table into ``x.reshape(-1)``, cached by shape:
        ``out[g, b, m] = sign[g, m] · x[b, idx[g, m]]`` with ``idx`` the rows' table (:meth:`_row_tables`), so that
        ``x.reshape(-1).index_select(0, table)`` is the orbit ``[|G|, B, *row]``, contiguous, in one operation.

        None (the caller takes the rows path) while a tracer, exporter or compiler captures (the table depends on
        the batch size), for a symbolic shape, and for tables over :data:`_MAX_FLAT` entries. At most
        :data:`_MAX_FLAT_CACHED` tables are kept (the last batch sizes seen)."""
        if _capturing_graph() or not _eager(x):
            return None
        key = (x.shape, x.device, x.dtype)
        flat_tables: dict[Any, _RowTables] = self._cache.setdefault("flat", {})
        try:
            cached = flat_tables.get(key)
        except TypeError:  # a symbolic shape (torch.export)
            return None
        if cached is not None:
            return cached
        G, B = self.group.order, int(x.shape[0])
        row = tuple(int(n) for n in x.shape[1:])
        M = int(np.prod(row)) if row else 1
        if G * B * M > _MAX_FLAT:
            return None
        rows = self._row_tables(row, x.device, x.dtype)
        idx = (torch.arange(B, device=x.device) * M).view(1, B, 1) + rows.idx.view(G, 1, M)
        table = _RowTables(idx=idx.reshape(-1), sign=rows.sign, one_idx=None)
        if _eager(table.idx, table.sign):
            if len(flat_tables) >= _MAX_FLAT_CACHED:
                flat_tables.pop(next(iter(flat_tables)))  # the oldest
            flat_tables[key] = table
        return table

    def _orbit_rows(self, x: torch.Tensor) -> torch.Tensor:
        """The orbit by one ``index_select`` over whole rows (``x [B, *row] -> [|G|, B, *row]``)."""
        G, B = self.group.order, x.shape[0]
        t = self._row_tables(tuple(x.shape[1:]), x.device, x.dtype)
        xf = x.reshape(B, -1)
        if t.one_idx is not None:  # involution: [x, r·x]
            r = xf.index_select(1, t.one_idx)
            if t.sign is not None:
                r = r * t.sign[1]
            return torch.stack([xf, r]).reshape(2, *x.shape)
        out = xf.index_select(1, t.idx).view(B, G, -1).transpose(0, 1).contiguous()
        if t.sign is not None:
            out = out * t.sign
        return out.reshape(G, *x.shape)

    def apply(self, g: int, x: torch.Tensor) -> torch.Tensor:
        if not 0 <= g < self.group.order:
            raise IndexError(f"element {g} is not in {self.group.name} (order {self.group.order}).")
        p = self._plan((self.group.order, *x.shape), x.device, x.dtype, False)
        axis = p.start - 1
        xf = x if p.flat is None else x.reshape(*x.shape[:axis], *p.flat)
        if p.idx_view is not None:
            xf = xf.index_select(axis, p.idx_view[g].reshape(-1))
        if p.sign_view is not None:
            xf = xf * p.sign_view[g]
        return xf if p.flat is None else xf.reshape(x.shape)

    def apply_each(self, y: torch.Tensor) -> torch.Tensor:
        return self._gather_each(y, inverse=False)

    def inverse_each(self, y: torch.Tensor) -> torch.Tensor:
        return self._gather_each(y, inverse=True)

    def inverse_mean(self, y: torch.Tensor) -> torch.Tensor:
        m = self._sample_major_matrix(y)
        if m is not None:  # one matrix product, with the mean's 1/|G| in the matrix
            return y.transpose(0, 1).reshape(y.shape[1], -1) @ m[1]
        # one gather and one mean, whatever |G| (for |G| = 2 faster than (y₀ + r·y₁) / 2 in five operations, with
        # the same values, and two operations fewer in the backward)
        return self._gather_each(y, inverse=True).mean(0)

    def inverse_weighted_sum(self, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        m = self._sample_major_matrix(y)
        if m is None or weights.shape != y.shape[:2]:
            return weighted_sum(weights, self.inverse_each(y))
        # y · w keeps y's sample-major layout, so the rows [B, |G|·N] are a view: one multiply, one matrix product
        yw = y * (weights if weights.dtype == y.dtype else weights.to(y.dtype)).unsqueeze(-1)
        return yw.transpose(0, 1).reshape(y.shape[1], -1) @ m[0]

    def _sample_major_matrix(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """For outputs ``y [|G|, B, N]`` acted on along their last dim and laid out sample-major (the
        :func:`~equirl.averaging.by_group` view of rows ``[B·|G|, N]``, as a network gives them on the orbit of
        :meth:`orbit_by_sample`): ``(P, P/|G|)`` with ``P [|G|·N, N]`` the signed permutation matrix of every ``g⁻¹``,
        ``P[g·N + idx[g, n], n] = sign[g, n]``, so that ``Σ_g w[g, b] · g⁻¹·y[g, b]`` is the row ``b`` of
        ``(y · w)`` read as ``[B, |G|·N]``, times ``P``: one matrix product in place of a gather and a sum (and
        their backward). Cached per size, device and dtype. None for any other layout or action."""
        if y.is_contiguous():  # the common group-major layout first: one check
            return None
        G = self.group.order
        if (
            y.dim() != 3
            or self.dims != (-1,)
            or y.shape[0] != G
            or not y.is_floating_point()
            or not y.transpose(0, 1).is_contiguous()
        ):
            return None
        n = int(y.shape[2])
        key = ("inverse-matrix", n, y.device, y.dtype)
        cached = self._cache.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        idx, sign = self.tables((n,))
        idx = idx[self.group.inverse_table]
        sign = np.ones(idx.shape) if sign is None else sign[self.group.inverse_table]
        P = np.zeros((G * n, n))
        P[(np.arange(G)[:, None] * n + idx).reshape(-1), np.tile(np.arange(n), G)] = sign.reshape(-1)
        matrices = (torch.as_tensor(P, dtype=y.dtype, device=y.device),
                    torch.as_tensor(P / G, dtype=y.dtype, device=y.device))  # fmt: skip
        if _eager(y) and _eager(*matrices):
            self._cache[key] = matrices
        return matrices

    def _expanded(self, p: _Plan, shape: torch.Size) -> torch.Tensor:
        """``p.idx_view`` expanded to ``shape`` for ``torch.gather`` (a view, cached per shape)."""
        assert p.idx_view is not None
        if torch.jit.is_tracing() or torch.compiler.is_compiling():  # a captured graph expands for its batch
            return p.idx_view.expand(shape)
        key = ("expanded", id(p), shape)
        try:
            idx = self._cache.get(key)
        except TypeError:  # a symbolic shape (torch.export)
            return p.idx_view.expand(shape)
        if idx is None or idx[0] is not p:
            idx = (p, p.idx_view.expand(shape))
            if _eager(p.idx_view) and len(self._cache) < _MAX_CACHED:
                self._cache[key] = idx
        return idx[1]  # type: ignore[no-any-return]

    @staticmethod
    def _one(x: torch.Tensor, axis: int, p: _Plan) -> torch.Tensor:
        """The non-identity element of a group of order 2 on ``x`` (acted dims flattened at ``axis``)."""
        if p.one_idx is not None:
            x = x.index_select(axis, p.one_idx)
        return x if p.one_sign is None else x * p.one_sign

    def _gather_each(self, y: torch.Tensor, inverse: bool) -> torch.Tensor:
        """Slice ``g`` of ``y [|G|, ...]`` transformed by ``g`` (or by ``g⁻¹``), in one gather."""
        if y.shape[0] != self.group.order:
            raise ValueError(f"expected a leading group dim of size {self.group.order}, got shape {tuple(y.shape)}.")
        p = self._plan_for(y, inverse)
        yf = y if p.flat is None else y.reshape(*y.shape[: p.start], *p.flat)
        if p.idx_view is not None:
            yf = torch.gather(yf, p.start, self._expanded(p, yf.shape))
        if p.sign_view is not None:
            yf = yf * p.sign_view
        return yf if p.flat is None else yf.reshape(y.shape)


@dataclass(frozen=True)
class _RowTables:
    """Cached tables for an :class:`IndexAction`'s orbit over whole rows of one shape."""

    idx: torch.Tensor  # [G·M]: source position in the row for every element and output position
    sign: torch.Tensor | None  # [G, 1, M] (None: no signs)
    one_idx: torch.Tensor | None  # |G| = 2: [M], the non-identity element's row (else None)


_MISSING = object()
"""Marks a cache entry that was never computed (None is a computed answer: "no such path")."""

_MAX_CACHED = 256
"""At most this many entries in an action's cache of plans by shape (batch sizes that keep changing add none
beyond it; the plans themselves are shared between batch sizes)."""


_MAX_FLAT = 1 << 22
"""The largest orbit (``|G|·B·row`` entries) built from one whole-batch index table (32 MiB of int64 indices); larger
batches take the orbit over whole rows (an ``index_select`` and a copy into the ``[|G|, B, ...]`` layout)."""

_MAX_FLAT_CACHED = 8
"""At most this many whole-batch orbit tables per action (one per batch shape: training, acting, evaluation)."""


def _capturing_graph() -> bool:
    """True while torch.jit traces or torch.compile compiles (torch.export and ONNX export hand in fake tensors,
    which :func:`_eager` tells apart; ``torch.onnx.is_in_onnx_export()`` alone costs microseconds per call)."""
    return bool(torch.jit.is_tracing() or torch.compiler.is_compiling())


def _eager(*tensors: torch.Tensor | None) -> bool:
    """True when every tensor given is a plain eager tensor (not a fake or functional one made by a tracer)."""
    return all(t is None or type(t) is torch.Tensor for t in tensors)


@dataclass(frozen=True)
class _Plan:
    """Cached tensors for applying an :class:`IndexAction` to tensors of one layout."""

    start: int  # index of the acted axis in the [G, ...] tensor (after flattening the acted dims)
    flat: tuple[int, ...] | None  # (N, *post) when several acted dims are flattened, else None
    idx_flat: torch.Tensor | None  # [G·N] for index_select (None: identity)
    idx_view: torch.Tensor | None  # [G, 1.., N, 1..] for gather (None: identity)
    sign_view: torch.Tensor | None  # [G, 1.., N, 1..] (None: no signs)
    sign_orbit: torch.Tensor | None  # [G, 1.., *acted sizes, 1..] for sign-only orbits
    one_idx: torch.Tensor | None = None  # |G| = 2: [N] index row of the non-identity element (None: identity)
    one_sign: torch.Tensor | None = None  # |G| = 2: [1.., N, 1..] its signs, for one slice (None: no signs)


# -- spatial -----------------------------------------------------------------------------------
SPATIAL_OPS = ("identity", "rot90", "rot180", "rot270", "flip0", "flip1", "transpose", "antitranspose")
"""Spatial primitives on two dims ``(a, b)``: ``rotK`` is ``torch.rot90(x, K/90, dims=(a, b))``;
``flip0`` flips dim ``a``, ``flip1`` flips dim ``b``; ``transpose`` swaps ``a`` and ``b``."""


def _spatial_index(op: str, h: int, w: int) -> np.ndarray:
    grid = np.arange(h * w).reshape(h, w)
    out = {
        "identity": lambda m: m,
        "rot90": lambda m: np.rot90(m, 1, axes=(0, 1)),
        "rot180": lambda m: np.rot90(m, 2, axes=(0, 1)),
        "rot270": lambda m: np.rot90(m, 3, axes=(0, 1)),
        "flip0": lambda m: m[::-1, :],
        "flip1": lambda m: m[:, ::-1],
        "transpose": lambda m: m.T,
        "antitranspose": lambda m: np.rot90(m, 2, axes=(0, 1)).T,
    }[op](grid)
    return np.ascontiguousarray(out).reshape(-1)


class SpatialAction(IndexAction):
    """Rotations and flips of two dims, for example the ``(H, W)`` of a ``(C, H, W)`` image.

    :param group: the group acting (for example ``cyclic(4)`` or ``dihedral(4)``).
    :param generators: one spatial primitive per generator, from :data:`SPATIAL_OPS`
        (for ``dihedral(4)``: ``["rot90", "flip0"]``).
    :param dims: the two dims acted on, negative (default ``(-2, -1)``).
    :param shape: optional ``(H, W)``; when given, the action is checked now rather than at first use.
    """

    def __init__(
        self,
        group: Group,
        generators: Sequence[str],
        dims: tuple[int, int] = (-2, -1),
        shape: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(group, dims)
        if len(self.dims) != 2:
            raise ValueError(f"SpatialAction acts on exactly two dims, got {self.dims}.")
        bad = [op for op in generators if op not in SPATIAL_OPS]
        if bad:
            raise ValueError(f"SpatialAction: unknown spatial op(s) {bad}; choose from {SPATIAL_OPS}.")
        self.ops = list(generators)
        if shape is not None:
            self.tables(tuple(shape))

    def generator_images(self, size: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        h, w = size
        swaps = {"rot90", "rot270", "transpose", "antitranspose"}
        if h != w and any(op in swaps for op in self.ops):
            raise ValueError(
                f"SpatialAction({self.group.name}, {self.ops}) rotates or transposes dims {self.dims}, "
                f"which needs a square grid, but got {h}x{w}. Use a square observation (pad it), "
                "or a group of flips only (flip0/flip1/rot180)."
            )
        return [(_spatial_index(op, h, w), None) for op in self.ops]

    def __repr__(self) -> str:
        return f"SpatialAction({self.group.name}, {self.ops}, dims={self.dims})"


class SignFlipAction(IndexAction):
    """Multiplies entries along ``dim`` by a sign vector per generator (for example ``s -> -s``).

    :param generators: one vector of ±1 per generator, of the length of ``dim``.
    """

    def __init__(self, group: Group, generators: Sequence[Sequence[float]], dim: int = -1) -> None:
        super().__init__(group, dim)
        masks = [np.asarray(m, dtype=np.float64) for m in generators]
        for m in masks:
            if m.ndim != 1 or not np.all(np.isin(m, (-1.0, 1.0))):
                raise ValueError(f"SignFlipAction: each generator must be a vector of +1/-1, got {m.tolist()}.")
        if len({len(m) for m in masks}) > 1:
            raise ValueError(f"SignFlipAction: sign vectors have different lengths {[len(m) for m in masks]}.")
        self.masks = masks
        self.size = len(masks[0]) if masks else 0
        self.tables((self.size,))

    def generator_images(self, size: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        if size != (self.size,):
            raise ValueError(
                f"{self!r} flips signs of {self.size} entries along dim {self.dims[0]}, "
                f"but the tensor has {size[0]} there."
            )
        return [(np.arange(self.size), m) for m in self.masks]

    def __repr__(self) -> str:
        return f"SignFlipAction({self.group.name}, {[m.astype(int).tolist() for m in self.masks]}, dim={self.dims[0]})"


class PermutationAction(IndexAction):
    """Permutes the entries along ``dim`` (actions, classes, vocabulary, tokens).

    :param generators: one permutation per generator, as the list ``p`` with ``(g·x)[i] = x[p[i]]``.
        For an involution such as a swap ``[1, 0]`` the convention does not matter.
    :param signs: optional ±1 vectors per generator, making signed permutations:
        ``(g·x)[i] = signs[i] * x[p[i]]`` (see :class:`SignedPermutationAction`, the same with signs required).
    """

    def __init__(
        self,
        group: Group,
        generators: Sequence[Sequence[int]],
        dim: int = -1,
        signs: Sequence[Sequence[float]] | None = None,
    ) -> None:
        super().__init__(group, dim)
        perms = [np.asarray(p, dtype=np.int64) for p in generators]
        self.size = len(perms[0]) if perms else 0
        for p in perms:
            _check_permutation(p.tolist(), self.size, f"PermutationAction({group.name})")
        self.perms = perms
        self.signs = None if signs is None else [np.asarray(s, dtype=np.float64) for s in signs]
        if self.signs is not None:
            if len(self.signs) != len(perms):
                raise ValueError(
                    f"{type(self).__name__}({group.name}): {len(perms)} permutations but {len(self.signs)} sign "
                    "vectors; give one sign vector per generator."
                )
            for sv in self.signs:
                if sv.shape != (self.size,) or not np.all(np.isin(sv, (-1.0, 1.0))):
                    raise ValueError(
                        f"{type(self).__name__}({group.name}): each sign vector must have {self.size} entries, "
                        f"each +1 or -1; got {sv.tolist()}."
                    )
        self.tables((self.size,))

    def generator_images(self, size: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        if size != (self.size,):
            raise ValueError(
                f"{self!r} permutes {self.size} entries along dim {self.dims[0]}, but the tensor has "
                f"{size[0]} there (for a Q-network: the action space has {size[0]} actions). "
                f"Give permutations of range({size[0]})."
            )
        if self.signs is None:
            return [(p, None) for p in self.perms]
        return list(zip(self.perms, self.signs, strict=True))

    def __repr__(self) -> str:
        signs = "" if self.signs is None else f", signs={[sv.astype(int).tolist() for sv in self.signs]}"
        return (
            f"{type(self).__name__}({self.group.name}, {[p.tolist() for p in self.perms]}{signs}, dim={self.dims[0]})"
        )


class SignedPermutationAction(PermutationAction):
    """A signed permutation of the entries along ``dim``: ``(g·x)[i] = signs[i] * x[p[i]]`` per generator.

    The one constructor for maps such as a mirror that swaps two observation entries and negates
    others (for example ``[x, y, vx, vy] -> [-x, y, -vx, vy]`` or ``-> [y, x, vy, vx]``)::

        SignedPermutationAction(cyclic(2), [[0, 1, 2, 3]], signs=[[-1, 1, -1, 1]])

    :param generators: one permutation per generator, ``p`` with ``(g·x)[i] = signs[i] * x[p[i]]``.
    :param signs: one ±1 vector per generator (same length as the permutation).
    :param dim: the dim acted on (negative).

    Equivalent to ``PermutationAction(group, generators, dim, signs=signs)``; a sign flip and a permutation
    on the same dims cannot be put side by side in a :class:`ComposedAction`: declare this instead.
    """

    def __init__(
        self,
        group: Group,
        generators: Sequence[Sequence[int]],
        signs: Sequence[Sequence[float]],
        dim: int = -1,
    ) -> None:
        super().__init__(group, generators, dim=dim, signs=signs)


class ValuePermutationAction(Action):
    """Maps integer *values* through a permutation of ``range(num_values)`` (token ids in a prompt).

    :param generators: one permutation of ``range(num_values)`` per generator; ``g·x = p[x]`` elementwise.
    """

    def __init__(self, group: Group, generators: Sequence[Sequence[int]]) -> None:
        super().__init__(group)
        perms = [np.asarray(p, dtype=np.int64) for p in generators]
        self.num_values = len(perms[0]) if perms else 0
        for p in perms:
            _check_permutation(p.tolist(), self.num_values, f"ValuePermutationAction({group.name})")
        self.perms = perms
        # rep(a∘b)(v) = rep(a)(rep(b)(v)): as lookup tables, (a∘b)[v] = a[b[v]]
        self.table = _extend_over_words(self, np.arange(self.num_values), perms, lambda a, b: a[b])

    def _table(self, device: torch.device) -> torch.Tensor:
        key = ("table", device)
        if key in self._cache:
            return self._cache[key]  # type: ignore[no-any-return]
        table = torch.as_tensor(self.table, device=device)
        if _eager(table):
            self._cache[key] = table
        return table

    def orbit(self, x: torch.Tensor) -> torch.Tensor:
        return self._table(x.device)[:, x.long()].to(x.dtype)

    def apply_each(self, y: torch.Tensor) -> torch.Tensor:
        t = self._table(y.device)
        G = self.group.order
        return torch.gather(t, 1, y.long().reshape(G, -1)).reshape(y.shape).to(y.dtype)

    def __repr__(self) -> str:
        return f"ValuePermutationAction({self.group.name}, num_values={self.num_values})"


class ComposedAction(Action):
    """Several actions of the same group applied together (on disjoint dims, so they commute).

    For example a spatial rotation of ``(H, W)`` together with a permutation of direction channels.
    """

    def __init__(self, *actions: Action) -> None:
        if not actions:
            raise ValueError("ComposedAction needs at least one action.")
        group = actions[0].group
        for a in actions[1:]:
            if a.group != group:
                raise ValueError(
                    f"ComposedAction: all actions must be of the same group; got {group.name} and {a.group.name}."
                )
        index_dims = [set(a.dims) for a in actions if isinstance(a, IndexAction)]
        for i in range(len(index_dims)):
            for j in range(i + 1, len(index_dims)):
                if index_dims[i] & index_dims[j]:
                    raise ValueError(
                        f"ComposedAction: index actions overlap on dims {sorted(index_dims[i] & index_dims[j])}; "
                        "combine them into one action on those dims instead: a sign flip and a permutation of "
                        "the same entries is SignedPermutationAction(group, permutations, signs=..., dim=...), "
                        "where (g·x)[i] = signs[i] * x[p[i]]."
                    )
        if sum(isinstance(a, ValuePermutationAction) for a in actions) > 1:
            raise ValueError("ComposedAction: at most one ValuePermutationAction (value maps need not commute).")
        super().__init__(group)
        self.actions = list(actions)

    def validate(self, sample_shape: Sequence[int]) -> None:
        for a in self.actions:
            a.validate(sample_shape)

    def merged(self) -> IndexAction | None:
        """One :class:`IndexAction` equal to this composition, or None when a part is not an index action.

        When every part is an :class:`IndexAction` (or acts trivially), the composition is a signed
        permutation of the span of their dims, read off from the parts themselves; applying it costs
        one ``index_select`` per orbit instead of one gather per part.
        """
        if "merged" not in self._cache:
            parts = [a for a in self.actions if not a.acts_trivially]
            ok = bool(parts) and all(isinstance(a, IndexAction) for a in parts)
            self._cache["merged"] = _MergedIndexAction(self.group, parts) if ok else None  # type: ignore[arg-type]
        return self._cache["merged"]  # type: ignore[no-any-return]

    def orbit(self, x: torch.Tensor) -> torch.Tensor:
        m = self.merged()
        return self._orbit_parts(x) if m is None else m.orbit(x)

    def orbit_by_sample(self, x: torch.Tensor) -> torch.Tensor | None:
        m = self.merged()
        return None if m is None else m.orbit_by_sample(x)

    def apply_each(self, y: torch.Tensor) -> torch.Tensor:
        m = self.merged()
        return self._each_parts(y, inverse=False) if m is None else m.apply_each(y)

    def inverse_each(self, y: torch.Tensor) -> torch.Tensor:
        m = self.merged()
        return self._each_parts(y, inverse=True) if m is None else m.inverse_each(y)

    def inverse_mean(self, y: torch.Tensor) -> torch.Tensor:
        m = self.merged()
        return self._each_parts(y, inverse=True).mean(0) if m is None else m.inverse_mean(y)

    def inverse_weighted_sum(self, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        m = self.merged()
        if m is None:
            return weighted_sum(weights, self._each_parts(y, inverse=True))
        return m.inverse_weighted_sum(y, weights)

    # the general path: one part after the other (the reference for the merged tables)
    def _orbit_parts(self, x: torch.Tensor) -> torch.Tensor:
        y = self.actions[0].orbit(x)
        for a in self.actions[1:]:
            y = a.apply_each(y)
        return y

    def _each_parts(self, y: torch.Tensor, inverse: bool) -> torch.Tensor:
        for a in self.actions:
            y = a.inverse_each(y) if inverse else a.apply_each(y)
        return y

    @property
    def acts_trivially(self) -> bool:
        return all(a.acts_trivially for a in self.actions)

    def __repr__(self) -> str:
        return f"ComposedAction({', '.join(repr(a) for a in self.actions)})"


# -- actions as data -----------------------------------------------------------------------------
ACTION_KINDS: dict[str, tuple[type[Action], Any, Any]] = {}
"""Action kinds that have a data form: ``kind -> (class, to_data, from_data)``."""


def register_action_kind(kind: str, cls: type[Action], to_data: Any, from_data: Any, overwrite: bool = False) -> None:
    """Give actions of class ``cls`` (exactly that class) a data form under the name ``kind``.

    :param to_data: ``action -> dict`` of JSON-able values (without the group).
    :param from_data: ``(group, dict) -> action``, the inverse.
    :raises ValueError: when ``kind`` is taken and ``overwrite`` is False.
    """
    if kind in ACTION_KINDS and ACTION_KINDS[kind][0] is not cls and not overwrite:
        raise ValueError(f"An action kind named {kind!r} is already registered; pass overwrite=True to replace it.")
    ACTION_KINDS[kind] = (cls, to_data, from_data)


def action_to_dict(action: Action) -> dict[str, Any]:
    """``{"kind": ..., **data}`` for an action of a registered kind (signs included).

    :raises TypeError: for an action class with no data form, naming the class and how to register it.
    """
    for kind, (cls, to_data, _) in ACTION_KINDS.items():
        if type(action) is cls:
            return {"kind": kind, **to_data(action)}
    raise TypeError(
        f"The action {type(action).__module__}.{type(action).__qualname__} has no data form, so it cannot be "
        "saved as data. Register one with equirl.actions.register_action_kind(kind, cls, to_data, from_data) "
        f"(known kinds: {sorted(ACTION_KINDS)})."
    )


def action_from_dict(data: dict[str, Any], group: Group) -> Action:
    """The action of ``group`` described by ``data`` (as written by :func:`action_to_dict`)."""
    if not isinstance(data, dict) or "kind" not in data:
        raise ValueError(f"An action as data must be a mapping with a 'kind', got {data!r}.")
    kind = data["kind"]
    if kind not in ACTION_KINDS:
        raise ValueError(
            f"Unknown action kind {kind!r}; known: {sorted(ACTION_KINDS)}. Register it with "
            "equirl.actions.register_action_kind before loading."
        )
    fields = {k: v for k, v in data.items() if k != "kind"}
    try:
        return ACTION_KINDS[kind][2](group, fields)  # type: ignore[no-any-return]
    except KeyError as err:
        raise ValueError(f"Action of kind {kind!r}: missing field {err} in {data!r}.") from err


def _floats(vectors: Sequence[np.ndarray]) -> list[list[float]]:
    return [[float(v) for v in m] for m in vectors]


register_action_kind("trivial", TrivialAction, lambda a: {}, lambda g, d: TrivialAction(g))
register_action_kind(
    "spatial",
    SpatialAction,
    lambda a: {"generators": list(a.ops), "dims": list(a.dims)},
    lambda g, d: SpatialAction(g, list(d["generators"]), tuple(d["dims"])),  # type: ignore[arg-type]
)
register_action_kind(
    "sign_flip",
    SignFlipAction,
    lambda a: {"generators": _floats(a.masks), "dim": a.dims[0]},
    lambda g, d: SignFlipAction(g, d["generators"], int(d["dim"])),
)
register_action_kind(
    "permutation",
    PermutationAction,
    lambda a: {
        "generators": [[int(i) for i in p] for p in a.perms],
        "dim": a.dims[0],
        "signs": None if a.signs is None else _floats(a.signs),
    },
    lambda g, d: PermutationAction(g, d["generators"], int(d["dim"]), d.get("signs")),
)
register_action_kind(
    "signed_permutation",
    SignedPermutationAction,
    lambda a: {"generators": [[int(i) for i in p] for p in a.perms], "dim": a.dims[0], "signs": _floats(a.signs)},
    lambda g, d: SignedPermutationAction(g, d["generators"], d["signs"], int(d["dim"])),
)
register_action_kind(
    "value_permutation",
    ValuePermutationAction,
    lambda a: {"generators": [[int(i) for i in p] for p in a.perms]},
    lambda g, d: ValuePermutationAction(g, d["generators"]),
)
register_action_kind(
    "composed",
    ComposedAction,
    lambda a: {"actions": [action_to_dict(x) for x in a.actions]},
    lambda g, d: ComposedAction(*(action_from_dict(x, g) for x in d["actions"])),
)


class _MergedIndexAction(IndexAction):
    """Index actions on disjoint dims, merged into one signed permutation of the span of their dims.

    The generator images are read off from the parts by applying each generator to ``±(1 + arange)``
    over the span (so index and sign come out of one tensor), and then extended over the group's words
    and checked like any :class:`IndexAction`.
    """

    def __init__(self, group: Group, parts: Sequence[IndexAction]) -> None:
        lo = min(a.dims[0] for a in parts)
        hi = max(a.dims[-1] for a in parts)
        super().__init__(group, tuple(range(lo, hi + 1)))
        self.parts = list(parts)

    def generator_images(self, size: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        n = int(np.prod(size))
        lo = self.dims[0]
        # each part's acted axes within the span, and its tables (numpy only: no tensors, so this also
        # runs while a tracer captures the forward)
        parts = []
        for a in self.parts:
            axes = [d - lo for d in a.dims]
            idx, sign = a.tables(tuple(size[i] for i in axes))
            parts.append((axes, idx, sign))
        has_sign = any(sign is not None for _, _, sign in parts)
        images: list[tuple[np.ndarray, np.ndarray | None]] = []
        for ge in self.group.generator_indices:
            y = np.arange(1, n + 1, dtype=np.float64).reshape(size)  # ±(1 + source index), sign and index in one
            for axes, idx, sign in parts:  # out[..., k] = sign[k] · in[..., idx[k]] over the part's flattened axes
                moved = np.moveaxis(y, axes, list(range(len(size) - len(axes), len(size))))
                flat = moved.reshape(*moved.shape[: len(size) - len(axes)], -1)[..., idx[ge]]
                if sign is not None:
                    flat = flat * sign[ge]
                y = np.moveaxis(flat.reshape(moved.shape), list(range(len(size) - len(axes), len(size))), axes)
            v = y.reshape(-1)
            images.append((np.abs(v).astype(np.int64) - 1, np.sign(v) if has_sign else None))
        return images

    def __repr__(self) -> str:
        return f"merged({', '.join(repr(a) for a in self.parts)})"


class PositionValuePermutationAction(Action):
    """Permutes the entries of integer vectors and the values within each entry.

    ``(g·x)[..., i] = values[i][x[..., positions[i]]]`` for each generator: a permutation of the
    ``k`` entries along the last dim (entries that trade places must have the same number of values)
    and, per entry of the result, a permutation of its values. For example the coordinates ``(x, y)``
    of an ``n × n`` grid under a quarter turn: ``positions=[1, 0]``, ``values=[None, reversed(range(n))]``.

    :param sizes: the number of values of each entry, ``[k]`` (a MultiDiscrete space's ``nvec``).
    :param positions: one permutation of ``range(k)`` per generator.
    :param values: per generator, one permutation of ``range(sizes[i])`` per entry ``i`` (None: identity),
        or None for no value change at all.
    Acts on integer (or integer-valued float) tensors ``[*batch, k]``; the dtype is kept.
    """

    def __init__(
        self,
        group: Group,
        sizes: Sequence[int],
        positions: Sequence[Sequence[int]],
        values: Sequence[Sequence[Sequence[int] | None] | None] | None = None,
    ) -> None:
        super().__init__(group)
        self.sizes = [int(n) for n in sizes]
        if not self.sizes or any(n < 1 for n in self.sizes):
            raise ValueError(
                f"PositionValuePermutationAction({group.name}): sizes must be positive, got {list(sizes)}."
            )
        k, width = len(self.sizes), max(self.sizes)
        values = [None] * len(positions) if values is None else list(values)
        if len(values) != len(positions):
            raise ValueError(
                f"PositionValuePermutationAction({group.name}): {len(positions)} position permutations but "
                f"{len(values)} value lists; give one per generator."
            )
        self.positions = [np.asarray(p, dtype=np.int64) for p in positions]
        self.values: list[list[np.ndarray]] = []
        images = []
        for p, vals in zip(self.positions, values, strict=True):
            _check_permutation(p.tolist(), k, f"PositionValuePermutationAction({group.name}) positions")
            moved = [i for i in range(k) if self.sizes[int(p[i])] != self.sizes[i]]
            if moved:
                i = moved[0]
                raise ValueError(
                    f"PositionValuePermutationAction({group.name}): entry {i} ({self.sizes[i]} values) takes entry "
                    f"{int(p[i])} ({self.sizes[int(p[i])]} values); only entries with equal sizes can trade places."
                )
            vals = [None] * k if vals is None else list(vals)
            if len(vals) != k:
                raise ValueError(
                    f"PositionValuePermutationAction({group.name}): {len(vals)} value permutations for {k} entries."
                )
            table = np.tile(np.arange(width, dtype=np.int64), (k, 1))
            for i, v in enumerate(vals):
                if v is not None:
                    _check_permutation(
                        list(v), self.sizes[i], f"PositionValuePermutationAction({group.name}) entry {i}"
                    )
                    table[i, : self.sizes[i]] = np.asarray(v, dtype=np.int64)
            self.values.append([table[i, : self.sizes[i]].copy() for i in range(k)])
            images.append(np.concatenate([p[:, None], table], axis=1))

        def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            # (a∘b)(x)[i] = va_i[vb_{pa[i]}[x[pb[pa[i]]]]]
            pa, pb = a[:, 0], b[:, 0]
            tb = b[pa, 1:]
            return np.concatenate([pb[pa][:, None], np.take_along_axis(a[:, 1:], tb, axis=1)], axis=1)

        identity = np.concatenate([np.arange(k)[:, None], np.tile(np.arange(width), (k, 1))], axis=1)
        reps = _extend_over_words(self, identity, images, compose)
        self._pos = reps[:, :, 0]  # [G, k]
        self._val = reps[:, :, 1:]  # [G, k, width]

    def validate(self, sample_shape: Sequence[int]) -> None:
        if tuple(sample_shape)[-1:] != (len(self.sizes),):
            raise ValueError(
                f"{self!r} acts on vectors of {len(self.sizes)} entries, but samples have shape {tuple(sample_shape)}."
            )

    def _tables(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = ("tables", device)
        if key not in self._cache:
            self._cache[key] = (torch.as_tensor(self._pos, device=device), torch.as_tensor(self._val, device=device))
        return self._cache[key]  # type: ignore[no-any-return]

    def apply_each(self, y: torch.Tensor) -> torch.Tensor:
        pos, val = self._tables(y.device)
        G, k, width = val.shape
        flat = y.reshape(G, -1, k).long()  # [G, N, k]
        moved = torch.gather(flat, 2, pos[:, None, :].expand(G, flat.shape[1], k))
        offsets = (torch.arange(G, device=y.device)[:, None, None] * k + torch.arange(k, device=y.device)) * width
        return val.reshape(-1)[offsets + moved].reshape(y.shape).to(y.dtype)

    def __repr__(self) -> str:
        return f"PositionValuePermutationAction({self.group.name}, sizes={self.sizes})"


class DictAction(Action):
    """An action on dict inputs (``{key: tensor}``): one action per named key; other keys are invariant.

    For goal-conditioned observations, for example, the same permutation of bits on ``observation``,
    ``achieved_goal`` and ``desired_goal``. Every method takes and returns dicts of tensors, each
    with the shapes of the key's action: ``orbit({k: [*batch, ...]}) -> {k: [|G|, *batch, ...]}``.

    :param actions: ``key -> Action`` of ``group``; keys of an input not named here are left unchanged.
    """

    def __init__(self, group: Group, actions: Mapping[str, Action]) -> None:
        super().__init__(group)
        for key, a in actions.items():
            if not isinstance(key, str):
                raise TypeError(f"DictAction({group.name}): keys must be strings, got {key!r}.")
            if not isinstance(a, Action) or a.group != group:
                raise ValueError(
                    f"DictAction({group.name}): the action for {key!r} must be an equirl Action of {group.name}, "
                    f"got {a!r}."
                )
        self.actions: dict[str, Action] = dict(actions)

    def validate(self, sample_shape: Any) -> None:
        """``sample_shape``: a mapping ``key -> shape`` (no batch dims); every named key must be in it."""
        if not isinstance(sample_shape, Mapping):
            raise ValueError(f"{self!r} acts on dict inputs, but the input has shape {sample_shape!r}.")
        missing = sorted(set(self.actions) - set(sample_shape))
        if missing:
            raise ValueError(
                f"{self!r} acts on keys {missing} that the input does not have (it has {sorted(sample_shape)})."
            )
        for key, a in self.actions.items():
            try:
                a.validate(tuple(sample_shape[key]))
            except ValueError as err:
                raise ValueError(f"key {key!r}: {err}") from err

    def orbit(self, x: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # type: ignore[override]
        G = self.group.order
        return {
            k: self.actions[k].orbit(v) if k in self.actions else v.unsqueeze(0).expand(G, *v.shape)
            for k, v in x.items()
        }

    def apply_each(self, y: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return {k: self.actions[k].apply_each(v) if k in self.actions else v for k, v in y.items()}

    def inverse_each(self, y: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return {k: self.actions[k].inverse_each(v) if k in self.actions else v for k, v in y.items()}

    def inverse_mean(self, y: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return {k: self.actions[k].inverse_mean(v) if k in self.actions else v.mean(0) for k, v in y.items()}

    def apply(self, g: int, x: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # type: ignore[override]
        if not 0 <= g < self.group.order:
            raise IndexError(f"element {g} is not in {self.group.name} (order {self.group.order}).")
        return {k: self.actions[k].apply(g, v) if k in self.actions else v for k, v in x.items()}

    @property
    def acts_trivially(self) -> bool:
        return all(a.acts_trivially for a in self.actions.values())

    def __repr__(self) -> str:
        return f"DictAction({self.group.name}, {{{', '.join(f'{k!r}: {a!r}' for k, a in self.actions.items())}}})"


register_action_kind(
    "position_value_permutation",
    PositionValuePermutationAction,
    lambda a: {
        "sizes": list(a.sizes),
        "positions": [[int(i) for i in p] for p in a.positions],
        "values": [[[int(i) for i in v] for v in vals] for vals in a.values],
    },
    lambda g, d: PositionValuePermutationAction(g, d["sizes"], d["positions"], d.get("values")),
)
register_action_kind(
    "dict",
    DictAction,
    lambda a: {"actions": {k: action_to_dict(x) for k, x in a.actions.items()}},
    lambda g, d: DictAction(g, {str(k): action_from_dict(x, g) for k, x in dict(d["actions"]).items()}),
)
