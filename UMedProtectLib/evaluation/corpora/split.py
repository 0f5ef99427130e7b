"""Train/test split by slabs of contiguous slices, with a guard gap so that no test slice neighbours a training
slice."""

from __future__ import annotations

from typing import List, Tuple


def slab_split(num_slices: int, slab: int, test_every: int, guard: int,
               offset: int = 0) -> Tuple[List[List[int]], List[List[int]]]:
    """Cut [0, num_slices) into slabs of `slab` slices; every `test_every`-th slab (from `offset`) is a test slab.

    `guard` slices are dropped at each side of every train/test boundary, so adjacent slices, which are nearly
    identical, never end up on both sides. Returns (train slabs, test slabs), each a list of slice-index lists.
    """
    if slab < 1 or test_every < 2 or guard < 0:
        raise ValueError("slab must be >= 1, test_every >= 2 and guard >= 0")
    starts = list(range(0, num_slices, slab))
    is_test = [(index - offset) % test_every == 0 for index in range(len(starts))]
    train, test = [], []
    for index, start in enumerate(starts):
        indices = list(range(start, min(start + slab, num_slices)))
        before_differs = index > 0 and is_test[index - 1] != is_test[index]
        after_differs = index + 1 < len(starts) and is_test[index + 1] != is_test[index]
        # Both sides drop `guard` slices, so the distance across a boundary is at least 2 * guard + 1.
        if before_differs:
            indices = indices[guard:]
        if after_differs:
            indices = indices[:len(indices) - guard] if guard else indices
        if indices:
            (test if is_test[index] else train).append(indices)
    return train, test

