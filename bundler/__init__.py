"""wheelhouse: resolve, lock, fetch and pack Python environments for air-gapped target machines."""

__version__ = "0.1.0"
