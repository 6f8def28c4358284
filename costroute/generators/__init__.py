"""Generator specifications and registries."""

from ._spec import COST_UNITS, GeneratorRegistry, GeneratorSpec

__all__ = ["COST_UNITS", "GeneratorRegistry", "GeneratorSpec"]
