"""Ray's ``ray.util``: placement groups, scheduling strategies, ``ActorPool``,
``multiprocessing.Pool``, ``queue.Queue``, ``get_node_ip_address`` and
``list_named_actors``."""

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

def list_named_actors(all_namespaces=False):
    """The names ``ray.get_actor`` finds from here, sorted: the job's live
    named actors and the cluster's detached ones (a name goes when its actor
    dies). With ``all_namespaces=True``, Ray's other form: a dict per actor,
    ``{"name": ..., "namespace": "default"}`` — wray has one namespace."""
    import wray

    names = wray._call(wray._actors.list_named)
    if all_namespaces:
        return [{"name": name, "namespace": "default"} for name in names]
    return names


__all__ = [
    "ActorPool",
    "NodeAffinitySchedulingStrategy",
    "PlacementGroup",
    "PlacementGroupSchedulingStrategy",
    "get_current_placement_group",
    "get_node_ip_address",
    "list_named_actors",
    "multiprocessing",
    "queue",
    "placement_group",
    "remove_placement_group",
]
