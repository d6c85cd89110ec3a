"""qrr's release, read by the package metadata (pyproject.toml) and by every module that reports it."""

__version__ = "0.1.0.dev0"
