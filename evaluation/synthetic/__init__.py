"""Building blocks of the synthetic Finnish data; the public entry point is ``simulate``."""
