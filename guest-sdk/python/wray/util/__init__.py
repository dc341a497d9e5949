"""Ray's ``ray.util``: placement groups, scheduling strategies, ``ActorPool``
and ``multiprocessing.Pool``."""

from . import multiprocessing
from .actor_pool import ActorPool

from .placement_group import (
    PlacementGroup,
    get_current_placement_group,
    placement_group,
    remove_placement_group,
)
from .scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy

__all__ = [
    "ActorPool",
    "NodeAffinitySchedulingStrategy",
    "PlacementGroup",
    "PlacementGroupSchedulingStrategy",
    "get_current_placement_group",
    "multiprocessing",
    "placement_group",
    "remove_placement_group",
]
