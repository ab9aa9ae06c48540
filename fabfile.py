"""Fabric tasks: `fab up`, `fab verify`, `fab down`, ... one per `labctl` command, generated from its parsers
(labctl/fabtasks.py), so `fab --help TASK` and `labctl COMMAND --help` say the same. `fab --list` lists them."""

from labctl.fabtasks import collection

ns = collection()
