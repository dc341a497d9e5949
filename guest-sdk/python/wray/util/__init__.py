"""Ray's ``ray.util``: placement groups, scheduling strategies, ``ActorPool``,
``multiprocessing.Pool`` and ``queue.Queue``."""

from . import multiprocessing, queue
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
    "queue",
    "placement_group",
    "remove_placement_group",
]
