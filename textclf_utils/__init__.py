"""Shared code of the course "Transformer text classification, from attention math to distillation"."""

__version__ = "0.1.0"
