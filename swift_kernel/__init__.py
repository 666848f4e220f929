"""A Jupyter kernel for Swift that runs cells through the toolchain's LLDB."""

__version__ = "0.1.0"
