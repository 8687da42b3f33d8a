"""The named objective variants, in one table: the CLI, the suites, the reports and the speed benchmark read it.

A variant is a run config's ``objective`` section set one way (overrides applied on top of any config),
with the number of encoder passes per sample per step (what "equal compute" equalises) and the name a
results table prints. ``random`` is not a variant: it trains nothing (the encoder before pretraining).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UserError


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: tuple[str, ...]
    passes: int  # encoder forward passes per sample per optimiser step (views encoded)
    display: str


def _variant(name: str, passes: int, display: str, *overrides: str) -> Variant:
    return Variant(name, overrides, passes, display)


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        _variant("simsiam", 2, "SimSiam", "objective.method=simsiam"),
        _variant("gsg", 4, "SimSiam+GSG (4 views)", "objective.method=gsg", "objective.gsg_views=4"),
        _variant("gsg2", 2, "SimSiam+GSG (2 views)", "objective.method=gsg", "objective.gsg_views=2"),
        # Controls that isolate the guide: the case picked at random; the nearest other sample as partner.
        _variant("gsg-random", 4, "GSG, random selection", "objective.method=gsg-random", "objective.gsg_views=4"),
        _variant("gsg-hard", 4, "GSG, hard partner", "objective.method=gsg-hard", "objective.gsg_views=4"),
        _variant("byol", 2, "BYOL", "objective.method=byol"),
        # Positive control for the collapse measures.
        _variant("simsiam-nosg", 2, "SimSiam without stop-gradient (control)", "objective.method=simsiam-nosg"),
        _variant("byol-gsg", 4, "BYOL+GSG (4 views)", "objective.method=byol-gsg", "objective.gsg_views=4"),
        # The explicit-negatives reference (InfoNCE) and the ceiling trained with the labels.
        # Position-level objectives on aligned crops (domains with make_sequence_views: time series).
        _variant("ts2vec", 2, "TS2Vec (hierarchical contrastive)", "objective.method=ts2vec"),
        _variant("gsg-temporal", 2, "temporal GSG", "objective.method=gsg-temporal"),
        _variant("gsg-segment", 4, "GSG on aligned segments", "objective.method=gsg-segment", "objective.gsg_views=4"),
        _variant("simclr", 2, "SimCLR (InfoNCE, explicit negatives)", "objective.method=simclr"),
        _variant("supervised", 2, "supervised (ceiling)", "objective.method=supervised"),
    )
}
# The encoder as built, before any pretraining: the floor every table carries.
RANDOM = "random"
RANDOM_DISPLAY = "encoder before pretraining (floor)"
# The paired comparisons the benchmark tests: (GSG variant, its base method).
PAIRS: tuple[tuple[str, str], ...] = (("gsg", "simsiam"), ("gsg2", "simsiam"), ("byol-gsg", "byol"))


def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise UserError(f"unknown variant '{name}'; choose from {', '.join(VARIANTS)}")
    return VARIANTS[name]


def display_name(name: str) -> str:
    return RANDOM_DISPLAY if name == RANDOM else get_variant(name).display
