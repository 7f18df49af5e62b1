"""volact: KMS-style volume activation for software vendors' own products."""

__version__ = "0.1.0"

__all__ = ["__version__"]
