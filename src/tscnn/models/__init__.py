"""The models: TSCNN (``tscnn.py``) and the peers run beside it, one file each, named in one registry.

Importing this package registers every model (``MODELS``); ``get_model(name)`` finds one.
"""

from tscnn.models import hoof, lbptop, linear, offapexnet, sssnet, ststnet, tscnn  # noqa: F401  (each module registers its model)
from tscnn.models.registry import MODELS, ModelSpec, get_model, register_model

__all__ = ["MODELS", "ModelSpec", "get_model", "register_model"]
