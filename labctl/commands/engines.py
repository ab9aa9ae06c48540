"""`labctl engines` and `labctl engines fetch`: the engines a host can run, and the cache of them."""

from __future__ import annotations

import argparse
import json

from labctl import engines
from labctl.errors import UsageError
from labctl.executors import enginecache
from labctl.ui import Progress
from labctl.views.engines import print_engines


def cmd_engines(args: argparse.Namespace, progress: Progress) -> int:
    rows = enginecache.describe()
    if args.json:
        print(json.dumps({"cache": enginecache.cache_root(), "engines": rows}, indent=2))
        return 0
    print_engines(rows, enginecache.cache_root())
    if any(r["cached"] is False for r in rows):
        print("fetch one: labctl engines fetch NAME (sandbox hosts also fetch theirs at `labctl sandbox up`)")
    return 0


def cmd_engines_fetch(args: argparse.Namespace, progress: Progress) -> int:
    names = [r["name"] for r in enginecache.describe() if r["cached"] is not None]
    if args.name not in names:
        raise UsageError(f"unknown engine {args.name!r}; fetchable: {', '.join(names)}")
    if args.name in engines.names():
        unpacked = enginecache.fetch(args.name, progress)
    else:
        src = engines.store_tool_source(args.name)
        assert src is not None and src.release is not None
        unpacked = enginecache.fetch(args.name, progress, packages=src.store_tools[args.name], release=src.release,
                                     helpers=())
    print(f"{unpacked.name}: {unpacked.version} in {unpacked.directory}")
    for pkg, version in unpacked.packages.items():
        print(f"  {pkg} {version}")
    for helper, why in unpacked.from_host.items():
        print(f"  {helper}: {why}")
    return 0
