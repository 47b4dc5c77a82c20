"""Shared code of the course "Transformer text classification, from attention math to distillation"."""

import logging

# transformers imports torchao when it is installed; torchao then reports, at import, that its GPU-only
# kernels cannot load on this machine, and torch that torchao registers its enums the old way. Neither
# matters for the course's CPU int8 path, so they are kept out of the notebooks' output.
for _noisy in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_noisy).setLevel(logging.ERROR)

# Registers the mean-pooling classifier's model type with transformers' Auto classes, so that a saved one
# reloads through AutoModelForSequenceClassification and pipeline (see pooling).
from . import pooling  # noqa: E402,F401

__version__ = "0.1.0"
