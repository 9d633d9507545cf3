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


def test_shared_bytes_are_sealed_so_neither_side_changes_what_the_other_holds(shared_host):
    (shared,) = shared_host.call("echo", "run", {"x": torch.zeros(1000)})  # now lives in a sealed memfd
    shared_host.call("tensor_op", "run", {"x": ("add1", shared)})  # the host writes to its own copy of a page
    assert torch.equal(shared, torch.zeros(1000))  # and the parent's tensor is untouched
    (doubled,) = shared_host.call("tensor_op", "run", {"x": ("double", shared + 1)})
    assert torch.equal(doubled, torch.full((1000,), 2.0))
    shared[10:20] = 5  # the parent changes its copy-on-write view of a page ...
    (back,) = shared_host.call("echo", "run", {"x": shared})  # ... so it goes as a fresh copy, with the change
    assert torch.equal(back, shared) and back.data_ptr() != shared.data_ptr()


def test_a_file_mapped_here_and_written_here_is_mapped_afresh_when_it_comes_back(make_host):
    host = make_host("keeper")
    (made,) = host.call("tensor_op", "run", {"x": ("make", 1000)})
    host.call("tensor_op", "run", {"x": ("keep", made)})
    made[:10] = -1  # this side's copy-on-write pages, not the memfd's bytes
    (kept,) = host.call("tensor_op", "run", {"x": ("kept", None)})  # the host returns its own, unchanged
    assert torch.equal(kept, torch.arange(1000, dtype=torch.float32))
    assert made[:10].eq(-1).all()


def test_a_host_cannot_change_an_output_after_returning_it(make_host):
    host = make_host("later")
    (kept,) = host.call("tensor_op", "run", {"x": ("make", 1000)})
    host.call("tensor_op", "run", {"x": ("keep", kept)})  # the host keeps it ...
    host.call("tensor_op", "run", {"x": ("add1", kept)})  # ... and writes to it later
    assert torch.equal(kept, torch.arange(1000, dtype=torch.float32))


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
