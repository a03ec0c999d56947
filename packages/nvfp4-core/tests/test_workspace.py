"""Per-(device, stream) scratch buffers: separate per stream, reused, grown without freeing."""

import pytest
import torch

from nvfp4 import workspace

CPU = torch.device("cpu")


def test_reused_and_separate_per_stream_and_name():
    a = workspace.scratch(CPU, 11, "t.a", 100, torch.float32)
    assert workspace.scratch(CPU, 11, "t.a", 50, torch.float32).data_ptr() == a.data_ptr()
    assert workspace.scratch(CPU, 12, "t.a", 100, torch.float32).data_ptr() != a.data_ptr()
    assert workspace.scratch(CPU, 11, "t.b", 100, torch.float32).data_ptr() != a.data_ptr()
    assert workspace.current(CPU, 11, "t.a").data_ptr() == a.data_ptr()
    assert workspace.current(CPU, 13, "t.a") is None


def test_growth_is_geometric_and_keeps_the_old_buffer():
    first = workspace.scratch(CPU, 21, "t.grow", 1 << 16, torch.int32, zeroed=True)
    assert first.numel() == 1 << 16 and not first.any()
    grown = workspace.scratch(CPU, 21, "t.grow", (1 << 16) + 1, torch.int32, zeroed=True)
    assert grown.numel() == 1 << 17 and not grown.any()  # doubled, zero like the first
    assert workspace._retired[workspace._key(CPU, 21, "t.grow")] == [first]  # a captured graph may still use it
    big = workspace.scratch(CPU, 21, "t.grow", 1 << 20, torch.int32)
    assert big.numel() == 1 << 20


def test_dtype_mismatch_is_refused_with_the_name():
    workspace.scratch(CPU, 31, "t.dtype", 10, torch.float32)
    with pytest.raises(ValueError, match="'t.dtype' holds torch.float32"):
        workspace.scratch(CPU, 31, "t.dtype", 10, torch.int32)


def test_split_k_pair():
    part, cnt = workspace.split_k(CPU, 41, "t", 3000, 70)
    assert part.dtype == torch.float32 and part.numel() >= 3000
    assert cnt.dtype == torch.int32 and cnt.numel() >= 70 and not cnt.any()
    again = workspace.split_k(CPU, 41, "t", 2000, 70)
    assert again[0].data_ptr() == part.data_ptr() and again[1].data_ptr() == cnt.data_ptr()
    assert workspace.split_k(CPU, 41, "u", 3000, 70)[0].data_ptr() != part.data_ptr()  # another backend's
