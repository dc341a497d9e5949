"""Ray's ``ray.util.scheduling_strategies``."""


class PlacementGroupSchedulingStrategy:
    """Run inside bundle ``placement_group_bundle_index`` of
    ``placement_group`` (-1: bundle 0 — wray does not pick a bundle with
    room)."""

    def __init__(self, placement_group, placement_group_bundle_index=-1, placement_group_capture_child_tasks=None):
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index


class NodeAffinitySchedulingStrategy:
    """Run on the node with id ``node_id`` (``wray.get_runtime_context().
    get_node_id()`` where it runs). ``soft=False``: that node only, queued
    there until it has room; a node that is not in the cluster, or can
    never meet the demand, fails the task (``InvalidArgumentError`` at
    ``wray.get``) or the actor. ``soft=True``: that node while it has room,
    else wherever the default would go. Ray's ``_spill_on_unavailable`` and
    ``_fail_on_unavailable`` are accepted and have no effect."""

    def __init__(self, node_id, soft, _spill_on_unavailable=False, _fail_on_unavailable=False):
        self.node_id = node_id
        self.soft = soft
