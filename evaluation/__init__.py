"""Causal impact evaluation of the Finnish municipal employment trials (kuntakokeilut)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kuntakokeilu-evaluation")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
