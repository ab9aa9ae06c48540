"""`labctl` and `python -m labctl`: the CLI, with Ctrl-C during start-up (importing Fabric, paramiko, rich takes
about half a second) ending as quietly as Ctrl-C later does (exit 130; nothing has been touched yet)."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from labctl import cli

        return cli.main()
    except KeyboardInterrupt:       # between the import and cli.main's own handler, or inside a handler's `finally`
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
