"""One class per training objective: the views it needs, the heads it builds, the loss it computes.

``base`` holds the contract and the registry; ``siamese`` the instance-level methods (SimSiam, BYOL,
their GSG forms and controls, SimCLR, supervised); ``sequence`` the position-level ones (TS2Vec's
hierarchical contrastive loss, temporal GSG) and those that read aligned crops (GSG pooled over the shared
segment). Importing this package registers them all.
"""

from . import sequence, siamese
from .base import Objective, StepOutput, build_objective, get_objective, objective_names, register_objective

__all__ = [
    "Objective",
    "StepOutput",
    "build_objective",
    "get_objective",
    "objective_names",
    "register_objective",
    "sequence",
    "siamese",
]
