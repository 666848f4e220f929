"""End-to-end tests: the kernel driven through the real frontends and servers."""
