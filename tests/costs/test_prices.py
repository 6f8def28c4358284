"""Tests of costroute.costs._prices: FLOPs to US dollars."""

import pytest

from costroute.costs import DEFAULT_PRICE_MODEL, GPUPriceModel


def test_price_model():
    gpu = GPUPriceModel("toy", usd_per_hour=3.6, peak_flops_per_second=1e12, utilization=0.5)
    assert gpu.achieved_flops_per_second == 5e11
    assert gpu.seconds_per_image(1e12) == 2.0
    assert gpu.usd_per_image(1e12) == pytest.approx(0.002)
    assert DEFAULT_PRICE_MODEL.usd_per_hour == 2.99 and DEFAULT_PRICE_MODEL.utilization == 0.4
    assert DEFAULT_PRICE_MODEL.peak_flops_per_second == 989.4e12
    with pytest.raises(ValueError, match="utilization"):
        GPUPriceModel("bad", 1.0, 1e12, 0.0)
    with pytest.raises(ValueError, match="usd_per_hour"):
        GPUPriceModel("bad", -1.0, 1e12, 0.5)
    with pytest.raises(ValueError, match="flops"):
        gpu.usd_per_image(-1)
