"""``linfit builds``: the TensorFlow builds of the package index, and the cache of their
virtual environments that ``linfit ab --side "LABEL: tensorflow==2.20.*"`` makes."""

from __future__ import annotations

import argparse
import sys

from linfit._errors import LinfitError
from linfit._format import format_bytes, text_table
from linfit.commands._args import non_negative_float

_HEADERS = ("build", "tensorflow", "commit", "size", "last used (UTC)")
_RIGHT = (False, False, False, True, False)


def _epilog() -> str:
    from linfit.builds import (
        BUILD_PACKAGES,
        CACHE_ENV,
        CAP_ENV,
        DEFAULT_CAP_BYTES,
        PIP_ARGS_ENV,
        WORKER_REQUIREMENTS,
    )

    return f"""\
A build is PACKAGE==VERSION, PACKAGE one of {', '.join(BUILD_PACKAGES)};
VERSION may end .* (the newest of that series when the build is made).

`linfit ab --side "2.20: tensorflow==2.20.*"` makes the build's venv once: the build, then
{' and '.join(WORKER_REQUIREMENTS)}, not linfit (a worker runs this checkout's source). The
cache is {CACHE_ENV} (default ~/.cache/linfit/builds), at most {CAP_ENV}
(bytes, or 20G, 500M; default {format_bytes(DEFAULT_CAP_BYTES)}): least recently used out
first, never one in use. {PIP_ARGS_ENV} adds arguments to every pip command
(--index-url URL, or --no-index --find-links DIR for a local index).

examples:
  linfit builds available --package tf-nightly | tail -3
  linfit builds available --package tf-nightly --between 2.22.0.dev20260601 --and 2.23.0.dev20261026
  linfit builds list
  linfit builds prune --keep 3
  linfit builds prune tf-nightly==2.23.0.dev20261026

exit status: 0 done; 1 prune kept a named build that a running session uses; 2 bad input
(one line: a build that is not PACKAGE==VERSION or not in the cache, a package that is not
TensorFlow's, a bound that is not a version, pip failing)
"""


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be an integer >= 0")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    from linfit.builds import BUILD_PACKAGES

    parser = subparsers.add_parser(
        "builds", help="TensorFlow builds: what the package index has, and the cached venvs",
        description="The TensorFlow builds that `linfit ab` sides can name, and the cache of\n"
                    "their virtual environments.",
        epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="builds_command", required=True, metavar="ACTION",
                                    parser_class=type(parser))
    listed = actions.add_parser(
        "list", help="the cached builds, least recently used first",
        description="The cached builds: version, commit, size and last use, least recently "
                    "used first, with the cache's total and cap.")
    listed.set_defaults(func=run_list)
    prune = actions.add_parser(
        "prune", help="remove cached builds (never one in use)",
        description="Remove cached builds: the BUILDs named, then all but the --keep most "
                    "recently used, then the least recently used until the cache holds at most "
                    "--max-gb. Half-made venvs (a maker was killed) are always removed. A build "
                    "that a running session uses is never removed.")
    prune.add_argument("builds", nargs="*", metavar="BUILD",
                       help="a build to remove, PACKAGE==VERSION as it was made "
                            "(tensorflow==2.20.*)")
    prune.add_argument("--keep", type=_count, metavar="N",
                       help="keep the N most recently used builds")
    prune.add_argument("--max-gb", type=non_negative_float, metavar="G",
                       help="remove the least recently used until the cache holds at most G GB")
    prune.set_defaults(func=run_prune)
    available = actions.add_parser(
        "available", help="the builds the package index has, oldest first",
        description="The builds of a TensorFlow package that the package index has for this "
                    "Python and platform, oldest first, one PACKAGE==VERSION a line, as pip "
                    "reports them (pip index versions; nightlies with --pre).")
    available.add_argument("--package", default="tf-nightly", choices=BUILD_PACKAGES,
                           help="the package (default: tf-nightly)")
    available.add_argument("--between", metavar="A",
                           help="only versions from A on (inclusive)")
    available.add_argument("--and", dest="and_", metavar="B",
                           help="only versions up to B (inclusive)")
    available.set_defaults(func=run_available)


def run_list(args: argparse.Namespace) -> int:
    from linfit.builds import BuildCache

    cache = BuildCache()
    entries = cache.entries()
    if not entries:
        print(f"no builds in {cache.root}")
        return 0
    rows = [[entry.build.requirement, entry.tensorflow_version, entry.commit or "-",
             format_bytes(entry.size_bytes), entry.last_used.strftime("%Y-%m-%d %H:%M")]
            for entry in entries]
    print("\n".join(text_table([list(_HEADERS), None, *rows], list(_RIGHT))))
    total = sum(entry.size_bytes for entry in entries)
    print(f"\n{len(entries)} build{'' if len(entries) == 1 else 's'}, {format_bytes(total)} "
          f"of the cap "
          f"{format_bytes(cache.cap_bytes)}, in {cache.root}")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    from linfit.builds import BuildCache, parse_build

    builds = [parse_build(text) for text in args.builds]
    cache = BuildCache()
    missing = [build for build in builds if not cache.path(build).exists()]
    if missing:
        raise LinfitError(f"build {missing[0]} is not in the cache {cache.root}; "
                          "`linfit builds list` shows what is")
    max_bytes = None if args.max_gb is None else int(args.max_gb * 1e9)
    removed = cache.prune(keep=args.keep, max_bytes=max_bytes, builds=builds)
    for entry in removed:
        state = "" if entry.complete else " (half-made)"
        print(f"removed {entry.build}{state}: {format_bytes(entry.size_bytes)}")
    if not removed:
        print("nothing to remove")
    in_use = [build for build in builds if cache.path(build).exists()]
    for build in in_use:
        print(f"linfit builds: build {build} is in use by a running session: kept",
              file=sys.stderr)
    return 1 if in_use else 0


def run_available(args: argparse.Namespace) -> int:
    from linfit.builds import available
    from linfit.harness import sigterm_as_interrupt

    # SIGTERM ends pip's query as Ctrl-C does: the child is killed on the way out.
    with sigterm_as_interrupt():
        builds = available(args.package, args.between, args.and_)
    for build in builds:
        print(build.requirement)
    return 0
