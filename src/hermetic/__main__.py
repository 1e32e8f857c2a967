"""``python -m hermetic`` and the ``hermetic`` console script (:mod:`hermetic.cli`)."""

from __future__ import annotations

__all__ = ["main"]


def main() -> int:
    """Run the command line on ``sys.argv[1:]`` and return its exit status."""
    from .cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
