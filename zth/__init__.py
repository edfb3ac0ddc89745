"""zth: Andrej Karpathy's *Neural Networks: Zero to Hero* as a tested Python package.

One subpackage per lecture family (``zth.micrograd``, ``zth.makemore``, ``zth.gpt``,
``zth.tokenizer``, ``zth.gpt2``, ``zth.llama``) plus shared helpers such as
``zth.data``. Subpackages are imported on demand, so ``import zth`` stays quick.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zth")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

_SUBMODULES = {"data", "micrograd", "makemore", "gpt", "tokenizer", "gpt2", "llama"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return import_module(f"zth.{name}")
    raise AttributeError(f"module 'zth' has no attribute {name!r}")


__all__ = ["__version__", *sorted(_SUBMODULES)]
