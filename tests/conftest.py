"""Shared test set-up: the offline data folder, seeds, the names dataset, single-threaded torch."""

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

# Use the repository's sibling data mirror when nothing else was configured (as in CI).
_mirror = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "ZTH_DATA_DIR" not in os.environ and _mirror.is_dir():
    os.environ["ZTH_DATA_DIR"] = str(_mirror)
if "TIKTOKEN_CACHE_DIR" not in os.environ and (_mirror / "tiktoken_cache").is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_mirror / "tiktoken_cache")

import zth.data  # noqa: E402  (after ZTH_DATA_DIR is set)


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


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
