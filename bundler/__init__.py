"""wheelhouse: resolve, lock, fetch and pack Python environments for air-gapped target machines.

The public surface is the version and the exception tree; the command line (``wheelhouse``,
``python -m bundler``) is the supported interface.
"""

from bundler.errors import (BadBundle, BadInput, BundlerError, DownloadFailed, HashMismatch, Incomplete, IndexUnavailable,
                            NoCompatibleFile, ResolutionImpossible, UsageError)

__version__ = "0.1.0"

__all__ = ["BadBundle", "BadInput", "BundlerError", "DownloadFailed", "HashMismatch", "Incomplete", "IndexUnavailable",
           "NoCompatibleFile", "ResolutionImpossible", "UsageError", "__version__"]
