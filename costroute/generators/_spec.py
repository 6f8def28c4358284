"""Generator descriptions: :class:`GeneratorSpec` and the ordered :class:`GeneratorRegistry`.

A spec only *describes* a text-to-image generation function (its name, its cost per image
and free settings such as the number of steps). It holds no weights, so it is cheap to
copy and safe to keep in an estimator parameter that :func:`sklearn.base.clone` deep-copies.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from .._checks import check_nonnegative

#: Units of a cost per image: FLOPs, US dollars, or seconds measured with :func:`costroute.execution.profile`.
COST_UNITS = ("flops", "usd", "seconds")


def _check_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"generator name must be a str, got {type(name).__name__}: {name!r}")
    if not name.strip():
        raise ValueError(f"generator name must be a non-empty string, got {name!r}")
    return name


def _check_cost(cost: Any, name: str) -> float:
    return check_nonnegative(cost, f"cost of generator {name!r}")


def _check_unit(unit: Any) -> str:
    if unit not in COST_UNITS:
        raise ValueError(f"cost_unit must be one of {COST_UNITS}, got {unit!r}")
    return unit


class GeneratorSpec:
    """Description of one generation function h_k: a name, a cost per image and settings.

    Parameters
    ----------
    name : str
        Unique name of the generator (for example ``"SDXL_Base"`` or ``"sd15-25steps"``).
    cost : float
        Cost of one image, in ``cost_unit``. Must be finite and non-negative.
    cost_unit : {"flops", "usd", "seconds"}, default="flops"
        Unit of ``cost``. All generators of one registry share a unit.
    **settings
        Free settings describing the generator (steps, guidance scale, resolution, model id,
        ...). They are stored as given in :attr:`settings`.

    Examples
    --------
    >>> from costroute import GeneratorSpec
    >>> spec = GeneratorSpec("sd15-25", cost=2.1e13, steps=25, guidance_scale=7.5)
    >>> spec.settings["steps"]
    25
    """

    def __init__(self, name: str, cost: float, cost_unit: str = "flops", **settings: Any):
        self.name = _check_name(name)
        self.cost = _check_cost(cost, self.name)
        self.cost_unit = _check_unit(cost_unit)
        self.settings = dict(settings)

    def clone(self, **changes: Any) -> GeneratorSpec:
        """Return a deep copy, with ``changes`` applied to attributes or settings."""
        new = copy.deepcopy(self)
        for key, value in changes.items():
            if key == "name":
                new.name = _check_name(value)
            elif key == "cost":
                new.cost = _check_cost(value, new.name)
            elif key == "cost_unit":
                new.cost_unit = _check_unit(value)
            else:
                new.settings[key] = value
        return new

    def _key(self) -> tuple:
        return (type(self), self.name, self.cost, self.cost_unit, repr(sorted(self.settings.items())))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GeneratorSpec):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.settings.items())
        return f"{type(self).__name__}(name={self.name!r}, cost={self.cost:.4g}, cost_unit={self.cost_unit!r}{extra})"


class GeneratorRegistry:
    """Ordered collection of :class:`GeneratorSpec` with unique names and one cost unit.

    The order is the column order of quality matrices and of
    :meth:`CostAwareRouter.predict_quality <costroute.CostAwareRouter.predict_quality>`.

    Parameters
    ----------
    generators : iterable of GeneratorSpec
        At least one spec. Names must be unique and cost units equal.

    Examples
    --------
    >>> from costroute import GeneratorRegistry
    >>> reg = GeneratorRegistry.from_costs({"turbo": 1.0, "base": 4.0})
    >>> reg.names
    ['turbo', 'base']
    >>> reg.normalized_costs()
    array([0.25, 1.  ])
    """

    def __init__(self, generators: Iterable[GeneratorSpec]):
        if isinstance(generators, (str, bytes, Mapping)):
            raise TypeError(
                "generators must be an iterable of GeneratorSpec; use "
                "GeneratorRegistry.from_costs for a {name: cost} mapping"
            )
        specs = list(generators)
        if not specs:
            raise ValueError("a GeneratorRegistry needs at least one generator, got none")
        for spec in specs:
            if not isinstance(spec, GeneratorSpec):
                raise TypeError(f"every generator must be a GeneratorSpec, got {type(spec).__name__}: {spec!r}")
        names = [s.name for s in specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"generator names must be unique; duplicated: {dupes}")
        units = sorted({s.cost_unit for s in specs})
        if len(units) > 1:
            by_unit = {u: [s.name for s in specs if s.cost_unit == u] for u in units}
            raise ValueError(f"all generators of a registry must share one cost_unit, got {by_unit}")
        self._specs = specs

    @classmethod
    def from_costs(cls, costs: Mapping[str, float], cost_unit: str = "flops") -> GeneratorRegistry:
        """Build a registry from a ``{name: cost}`` mapping, in the mapping's order."""
        if not isinstance(costs, Mapping):
            raise TypeError(f"costs must be a mapping name -> cost, got {type(costs).__name__}")
        return cls(GeneratorSpec(name, cost, cost_unit=cost_unit) for name, cost in costs.items())

    @classmethod
    def coerce(cls, generators: Any) -> GeneratorRegistry:
        """Turn a registry, an iterable of specs or a ``{name: cost}`` mapping into a registry."""
        if isinstance(generators, GeneratorRegistry):
            return generators
        if isinstance(generators, Mapping):
            return cls.from_costs(generators)
        if generators is None or isinstance(generators, (str, bytes)) or not isinstance(generators, Iterable):
            raise TypeError(
                "generators must be a GeneratorRegistry, a list of GeneratorSpec or a dict "
                f"name -> cost, got {type(generators).__name__}: {generators!r}"
            )
        return cls(generators)

    @property
    def names(self) -> list[str]:
        """Generator names, in registry order."""
        return [s.name for s in self._specs]

    @property
    def costs(self) -> np.ndarray:
        """Cost per image of each generator, in registry order."""
        return np.array([s.cost for s in self._specs], dtype=float)

    @property
    def cost_unit(self) -> str:
        """The shared cost unit."""
        return self._specs[0].cost_unit

    def normalized_costs(self) -> np.ndarray:
        """Costs divided by the largest cost (c̃_k = c_k / max_j c_j), in registry order."""
        costs = self.costs
        top = costs.max()
        if top <= 0:
            raise ValueError("normalized costs are undefined when every generator costs 0")
        return costs / top

    def index(self, name: str) -> int:
        """Position of ``name``; unknown names raise a ValueError listing the valid names."""
        for i, spec in enumerate(self._specs):
            if spec.name == name:
                return i
        raise ValueError(f"unknown generator {name!r}; valid names are {self.names}")

    def subset(self, names: Iterable[str]) -> GeneratorRegistry:
        """A new registry with the named generators, in the given order."""
        return GeneratorRegistry(self[n] for n in names)

    def __getitem__(self, key: str | int) -> GeneratorSpec:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            return self._specs[key]
        if isinstance(key, str):
            return self._specs[self.index(key)]
        raise TypeError(f"look generators up by name (str) or position (int), got {type(key).__name__}")

    def __contains__(self, name: object) -> bool:
        return any(s.name == name for s in self._specs)

    def __iter__(self) -> Iterator[GeneratorSpec]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GeneratorRegistry):
            return NotImplemented
        return self._specs == other._specs

    def __hash__(self) -> int:
        return hash(tuple(self._specs))

    def __repr__(self) -> str:
        inner = ", ".join(f"{s.name}={s.cost:.3g}" for s in self._specs)
        return f"GeneratorRegistry([{inner}], cost_unit={self.cost_unit!r})"
