"""Ray's ``ray.util``: placement groups, scheduling strategies, ``ActorPool``,
``multiprocessing.Pool``, ``queue.Queue`` and ``get_node_ip_address``."""

from . import multiprocessing, queue
from .actor_pool import ActorPool

from .placement_group import (
    PlacementGroup,
    get_current_placement_group,
    placement_group,
    remove_placement_group,
)
from .scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy


def get_node_ip_address():
    """The IP address of the node the caller runs on, as the cluster's head
    sees it (``wray.nodes()``); ``127.0.0.1`` on an embedded runtime, which
    is this machine and listens nowhere."""
    import wray

    here = wray.get_runtime_context().get_node_id()
    for node in wray.nodes():
        if node["NodeID"] == here and node["NodeManagerAddress"]:
            return node["NodeManagerAddress"]
    return "127.0.0.1"

__all__ = [
    "ActorPool",
    "NodeAffinitySchedulingStrategy",
    "PlacementGroup",
    "PlacementGroupSchedulingStrategy",
    "get_current_placement_group",
    "get_node_ip_address",
    "multiprocessing",
    "queue",
    "placement_group",
    "remove_placement_group",
]
