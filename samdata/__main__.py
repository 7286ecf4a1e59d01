"""``python -m samdata {prepare,check} NAME --root DIR [--source ARCHIVE_OR_DIR ...]``.

Exit code 0: complete; 1: something is missing (each shortfall on its own line); 2: a user error
(one line on stderr).
"""

from __future__ import annotations

import argparse
import sys

from samdata import DataError, registry

EPILOG = "datasets:\n" + "\n".join(f"  {name:<14}{entry.summary}" for name, entry in registry.DATASETS.items())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m samdata",
        description="Prepare the datasets of the SAMCLR paper's tables from their official archives, and check them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    prep = sub.add_parser(
        "prepare", help="extract (or download), convert instance masks, check the counts",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prep.add_argument("name", help="dataset name (see below)")
    prep.add_argument("--root", required=True, help="data root to prepare under, e.g. data/cityscapes")
    prep.add_argument(
        "--source", nargs="+", action="extend", default=[], metavar="ARCHIVE_OR_DIR",
        help="official archive(s) or extracted folder(s); cifar10, stl10, fashion-mnist download without one",
    )
    prep.add_argument(
        "--semantic-as-instances", action="store_true",
        help="ade20k only: also write ADEChallengeData2016/semantic_components/, the connected components of "
        "each semantic class (not instances) as masks, for when annotations_instance.tar is not at hand",
    )
    chk = sub.add_parser("check", help="only check what is under --root against the official counts", epilog=EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    chk.add_argument("name", help="dataset name (see below)")
    chk.add_argument("--root", required=True)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "prepare":
            report = registry.prepare(args.name, args.root, args.source, semantic_as_instances=args.semantic_as_instances)
        else:
            report = registry.check(args.name, args.root)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # unwritable root, full disk: the system's own one-line message
        print(f"error: {args.name}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: run the same command again to finish {args.name}", file=sys.stderr)
        return 130
    print("\n".join(report.lines()))
    return 0 if report.complete else 1


if __name__ == "__main__":
    sys.exit(main())
