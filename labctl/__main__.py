"""`labctl` and `python -m labctl`: the CLI, with Ctrl-C during start-up (importing Fabric, paramiko, rich takes
about half a second) ending as quietly as Ctrl-C later does (exit 130; nothing has been touched yet)."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from labctl import cli
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
