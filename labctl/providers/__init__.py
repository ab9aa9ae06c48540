"""Providers: how hosts come to exist (sandbox) or are found (static, vagrant), and how to reach them."""
