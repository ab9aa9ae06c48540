"""Executors: the only code with side effects (local commands, SSH, Docker, stores)."""
