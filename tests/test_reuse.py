"""Reused output batches: memory is written again only when nothing else can see it."""

from __future__ import annotations

import numpy as np
import torch

from ser.features.reuse import ReusableBuffers
from ser.features.spectrogram import SpectrogramImage

SHAPE, DENSE = (2, 3), torch.contiguous_format


def _pool():
    """A pool, a maker of (2, 3) float32 buffers for it, and a tally of the buffers made."""
    made: list[int] = []

    def make() -> torch.Tensor:
        made.append(1)
        return torch.zeros(SHAPE)

    return ReusableBuffers(slots=2), make, made


def test_released_buffer_is_handed_out_again():
    pool, make, made = _pool()
    first = pool.get(SHAPE, torch.float32, DENSE, make)
    address = first.data_ptr()
    del first
    again = pool.get(SHAPE, torch.float32, DENSE, make)
    assert again.data_ptr() == address and len(made) == 1


def test_buffer_still_in_use_is_never_handed_out():
    pool, make, made = _pool()
    holders = {
        "the tensor": lambda t: t,
        "a view": lambda t: t[1:],
        "a numpy array": lambda t: t.numpy(),
        "autograd": lambda t: (t * torch.ones(SHAPE, requires_grad=True)).sum(),
    }
    for name, hold in holders.items():
        handed = pool.get(SHAPE, torch.float32, DENSE, make)
        handed.fill_(7.0)
        kept = hold(handed)
        address = handed.data_ptr()
        del handed
        other = pool.get(SHAPE, torch.float32, DENSE, make)
        assert other.data_ptr() != address, f"reused while {name} still held it"
        other.fill_(-1.0)
        del kept, other


def test_shape_dtype_and_memory_format_must_match():
    pool, make, made = _pool()
    del_me = pool.get(SHAPE, torch.float32, DENSE, make)
    del del_me
    pool.get((3, 2), torch.float32, DENSE, lambda: torch.zeros(3, 2))
    pool.get(SHAPE, torch.float64, DENSE, lambda: torch.zeros(SHAPE, dtype=torch.float64))
    assert len(made) == 1  # neither request took the float32 (2, 3) buffer
    images = (1, 3, 4, 4)
    planar = pool.get(images, torch.float32, DENSE, lambda: torch.zeros(images))
    address = planar.data_ptr()
    del planar
    last = pool.get(images, torch.float32, torch.channels_last,
                    lambda: torch.zeros(images).contiguous(memory_format=torch.channels_last))
    assert last.data_ptr() != address and last.is_contiguous(memory_format=torch.channels_last)


def test_images_held_by_the_caller_are_not_overwritten():
    pipeline = SpectrogramImage(chunk_size=2)
    rng = np.random.default_rng(0)
    first_blocks, second_blocks = (torch.from_numpy(rng.standard_normal((4, 4000)).astype(
        np.float32)) for _ in range(2))
    first = pipeline(first_blocks)
    kept = first.clone()
    second = pipeline(second_blocks)
    assert torch.equal(first, kept)
    assert not torch.equal(first, second)
    address = second.data_ptr()
    del second
    third = pipeline(first_blocks)  # the released batch's memory, written afresh
    assert third.data_ptr() == address and torch.equal(third, kept)
