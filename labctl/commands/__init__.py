"""One module per command (or group of commands); labctl.cli maps the parsed command to its handler."""
