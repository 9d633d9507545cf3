"""Tensors and numpy arrays cross through shared memory: exact values for every dtype (bfloat16 too), any strides,
and no copy: what the host changes in place the parent sees, and a tensor that already lives in one of our memfds
goes back by reference into the very same mapping."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from hearth.sandbox import wire

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.int16, torch.int32,
          torch.int64, torch.uint8, torch.bool, torch.complex64]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_tensors_of_every_dtype_round_trip_exactly(shared_host, dtype):
    source = (torch.arange(24) % 7).to(dtype).reshape(2, 3, 4)
    (back,) = shared_host.call("echo", "run", {"x": source})
    assert back.dtype == dtype and back.shape == source.shape and torch.equal(back, source)


def test_a_non_contiguous_tensor_arrives_with_its_values_and_an_empty_one_with_its_shape(shared_host):
    source = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()[1:, ::2]
    (back,) = shared_host.call("echo", "run", {"x": source})
    assert torch.equal(back, source)
    (empty,) = shared_host.call("echo", "run", {"x": torch.zeros(0, 5, dtype=torch.bfloat16)})
    assert empty.shape == (0, 5) and empty.dtype == torch.bfloat16
    (scalar,) = shared_host.call("echo", "run", {"x": torch.tensor(2.5)})
    assert scalar.shape == () and scalar.item() == 2.5


def test_numpy_arrays_round_trip_with_dtype_byte_order_and_strides(shared_host):
    for source in (np.arange(10, dtype=np.float32), np.arange(12, dtype=">i4").reshape(3, 4)[:, ::-2],
                   np.zeros((2, 0)), np.array([True, False]), np.arange(6, dtype=np.uint16).reshape(2, 3).T):
        (back,) = shared_host.call("echo", "run", {"x": source})
        assert isinstance(back, np.ndarray) and back.dtype == source.dtype and np.array_equal(back, source)
    (item,) = shared_host.call("echo", "run", {"x": np.float32(1.5)})
    assert item == 1.5 and type(item) is float
    with pytest.raises(Exception, match="cannot cross"):
        shared_host.call("echo", "run", {"x": np.array([object()])})


def test_the_host_changes_a_tensor_in_place_and_the_parent_sees_it_so_no_copy_was_made(shared_host):
    (shared,) = shared_host.call("echo", "run", {"x": torch.zeros(1000)})  # now lives in a memfd of ours
    shared_host.call("tensor_op", "run", {"x": ("add1", shared)})
    assert torch.equal(shared, torch.ones(1000))  # the host wrote into the very pages the parent maps
    view = shared[10:20]
    shared_host.call("tensor_op", "run", {"x": ("add1", view)})  # a view goes by reference too
    assert shared[10:20].eq(2).all() and shared[:10].eq(1).all() and shared[20:].eq(1).all()


def test_a_tensor_that_came_from_the_host_goes_back_into_the_same_mapping(shared_host):
    (made,) = shared_host.call("tensor_op", "run", {"x": ("make", 4096)})
    assert torch.equal(made, torch.arange(4096, dtype=torch.float32))
    shared_host.call("tensor_op", "run", {"x": ("keep", made)})
    same, address = shared_host.call("tensor_op", "run", {"x": ("same", made)})
    assert same is True  # the host got its own mapping back, not a copy and not a second mapping
    (again,) = shared_host.call("echo", "run", {"x": made})
    assert again.data_ptr() == made.data_ptr()  # and so did the parent


def test_mappings_are_let_go_when_the_tensors_die(shared_host):
    gc.collect()
    before = wire.mapped_count()
    results = [shared_host.call("echo", "run", {"x": torch.ones(100) * i})[0] for i in range(5)]
    assert wire.mapped_count() == before + 5
    del results
    gc.collect()
    assert wire.mapped_count() == before


def test_a_host_for_a_plain_pack_does_not_import_torch(make_host):
    host = make_host("plain")
    (info,) = host.call("info", "run", {})
    assert info["torch_loaded"] is False
