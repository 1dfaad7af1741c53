"""`python -m tinygrad_vg.ops`: print the op table (markdown); `--write README.md` puts it
between the README's markers, `--check README.md` exits 1 if the README's copy is stale."""
from __future__ import annotations

import argparse
import sys

from .listing import markdown, update


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinygrad_vg.ops", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE", help="write the table between FILE's markers")
    group.add_argument("--check", metavar="FILE", help="exit 1 if FILE's table is not the current one")
    args = parser.parse_args(argv)
    try:
        if args.write:
            update(args.write)
        elif args.check:
            if not update(args.check, check=True):
                print(f"{args.check}: the op table is stale; run python -m tinygrad_vg.ops --write {args.check}",
                      file=sys.stderr)
                return 1
        else:
            print(markdown())
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
