"""`python -m bench [--quick] [--only a,b] [--profile]`: the same as `agent bench`."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.runner import RESULTS_DIR, main_sync


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, under 3 minutes")
    parser.add_argument("--only", default="", help="comma-separated scenario keys")
    parser.add_argument("--profile", action="store_true", help="py-spy the worker in scenario 3")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    only = [key.strip() for key in args.only.split(",") if key.strip()] or None
    main_sync(args.quick, only, args.profile, args.output)


if __name__ == "__main__":
    main()
