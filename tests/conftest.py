"""Shared fixtures: the names dataset (never downloaded in tests) and single-threaded torch."""

import pytest
import torch

import zth.data


@pytest.fixture(scope="session")
def words() -> list[str]:
    """makemore's names, from a local copy (``ZTH_DATA_DIR`` or the cache); skip if there is none."""
    if zth.data.status()["names"] is None:
        pytest.skip("names.txt is not available locally (set ZTH_DATA_DIR); tests never download")
    return zth.data.names()


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one thread avoids thread hand-off costs (large on a loaded machine).

    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
