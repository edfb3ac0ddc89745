"""Shared test set-up: seeds, and the data folder for offline runs."""

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


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
