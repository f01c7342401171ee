"""The composition root: settings, wiring and the `cyp-registry` command."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cyp-registry")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
