"""``python -m zth``: the same as the ``zth`` command."""

from zth.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
