"""The engine fixes glibc's mmap threshold so its large buffers are unmapped when freed."""

from __future__ import annotations

import ctypes.util

import pytest

from backups.engine.memory import large_buffers_mapped


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library to ask")
def test_the_threshold_is_set_where_glibc_has_mallopt() -> None:
    assert large_buffers_mapped() is True
    # Setting it again is harmless (the engine does it at import).
    assert large_buffers_mapped(4 * 1024 * 1024) is True

