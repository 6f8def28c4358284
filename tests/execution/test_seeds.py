"""image_seed: one independent seed per (run seed, prompt index)."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costroute.execution import image_seed

seeds = st.integers(min_value=0, max_value=2**32)
indices = st.integers(min_value=0, max_value=10**6)


def test_deterministic_and_in_range():
    assert image_seed(0, 3) == image_seed(0, 3)
    values = [image_seed(s, i) for s, i in itertools.product(range(3), range(3))]
    assert all(0 <= v < 2**63 for v in values)


def test_every_pair_of_a_grid_gets_its_own_seed():
    grid = list(itertools.product(range(40), range(40)))
    assert len({image_seed(s, i) for s, i in grid}) == len(grid)


@given(seed=seeds, index=indices, shift=st.integers(min_value=1, max_value=1000))
def test_shifting_seed_and_index_against_each_other_gives_another_seed(seed, index, shift):
    """Seed s+k's image i and seed s's image i+k must not share their noise (as seed + index would)."""
    assert image_seed(seed + shift, index) != image_seed(seed, index + shift)
    assert image_seed(seed, index) != image_seed(seed, index + shift)
    assert image_seed(seed, index) != image_seed(seed + shift, index)


@given(a=st.tuples(seeds, indices), b=st.tuples(seeds, indices))
def test_distinct_pairs_distinct_seeds(a, b):
    if a != b:
        assert image_seed(*a) != image_seed(*b)


@pytest.mark.parametrize("seed, index", [(-1, 0), (0, -2), (1.5, 0), (True, 0), (0, "3")])
def test_bad_arguments_name_themselves(seed, index):
    what = "seed" if seed in (-1, 1.5) or seed is True else "index"
    with pytest.raises(ValueError, match=f"{what} must be a non-negative integer"):
        image_seed(seed, index)
