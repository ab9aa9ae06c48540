"""Pure model: parse and validate inventories and playbooks. No I/O beyond reading the given file."""
