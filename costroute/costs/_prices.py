"""Prices: FLOPs per image turned into US dollars on a rented GPU."""

from __future__ import annotations

import dataclasses
import math
import numbers


@dataclasses.dataclass(frozen=True)
class GPUPriceModel:
    """Turns FLOPs into US dollars: rent a GPU by the hour and run at a stated utilisation.

    ``usd_per_image(flops) = flops / (peak_flops_per_second * utilization) / 3600 * usd_per_hour``

    Parameters
    ----------
    name : str
        Description (GPU, price source).
    usd_per_hour : float
        Rental price of one GPU for one hour, in USD.
    peak_flops_per_second : float
        The GPU's dense (no sparsity) peak for the precision used, in FLOP/s.
    utilization : float
        Fraction of the peak actually achieved on the workload, in (0, 1].

    Examples
    --------
    >>> from costroute.costs import GPUPriceModel
    >>> gpu = GPUPriceModel("toy", usd_per_hour=3.6, peak_flops_per_second=1e12, utilization=1.0)
    >>> gpu.usd_per_image(1e12)
    0.001
    """

    name: str
    usd_per_hour: float
    peak_flops_per_second: float
    utilization: float

    def __post_init__(self) -> None:
        for what in ("usd_per_hour", "peak_flops_per_second"):
            value = getattr(self, what)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{what} must be a positive finite number, got {value!r}")
        u = self.utilization
        if isinstance(u, bool) or not isinstance(u, numbers.Real) or not 0 < u <= 1:
            raise ValueError(f"utilization must be in (0, 1], got {u!r}")

    @property
    def achieved_flops_per_second(self) -> float:
        """``peak_flops_per_second * utilization``."""
        return float(self.peak_flops_per_second) * float(self.utilization)

    def seconds_per_image(self, flops: float) -> float:
        """GPU seconds to execute ``flops`` at the achieved rate."""
        if isinstance(flops, bool) or not isinstance(flops, numbers.Real) or flops < 0 or not math.isfinite(flops):
            raise ValueError(f"flops must be a finite non-negative number, got {flops!r}")
        return float(flops) / self.achieved_flops_per_second

    def usd_per_image(self, flops: float) -> float:
        """USD to execute ``flops`` (one image) on this GPU."""
        return self.seconds_per_image(flops) / 3600.0 * float(self.usd_per_hour)


#: Default price model: one NVIDIA H100 SXM 80GB rented on demand at USD 2.99 per GPU-hour
#: (a common on-demand list price for H100 SXM, e.g. Lambda's 8x H100 SXM instances at
#: USD 2.99/GPU/h; surveyed on-demand H100 SXM prices range USD 2.49-3.99/h), dense BF16
#: tensor-core peak 989.4 TFLOP/s (NVIDIA H100 datasheet: 1,979 TFLOP/s *with* 2:4
#: sparsity, half without), at an assumed 40 % utilisation of that peak for batch-1
#: diffusion inference. Change any of the three numbers by building your own GPUPriceModel.
DEFAULT_PRICE_MODEL = GPUPriceModel(
    name="NVIDIA H100 SXM, on demand USD 2.99/h, BF16 dense peak 989.4 TFLOP/s at 40% utilisation",
    usd_per_hour=2.99,
    peak_flops_per_second=989.4e12,
    utilization=0.40,
)
