"""The ``fftconv`` command."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fftconv",
        description="Fast, exact convolution of large images.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo", help="blur, edge-detect and sharpen a generated photo; time against SciPy"
    )
    demo.add_argument("--size", type=int, default=4096, help="image side in pixels (4096)")
    demo.add_argument("--out", metavar="DIR", default=None, help="write the results here")
    demo.add_argument("--threads", type=int, default=None, help="FFTW threads (all cores)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in (None, "demo"):
        from . import _demo

        if args.command is None:
            args = _parser().parse_args(["demo"])
        if args.size < 16:
            print(f"fftconv demo: --size must be >= 16; got {args.size}", file=sys.stderr)
            return 2
        _demo.run(args.size, args.out, args.threads)
        return 0
    return 2
