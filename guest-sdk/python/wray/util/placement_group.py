"""Placement groups (Ray's ``ray.util.placement_group``): bundles of
resources reserved together across nodes, all or nothing, that tasks and
actors then run inside (``scheduling_strategy=PlacementGroupSchedulingStrategy(pg, i)``)."""

from componentize_py_types import Err as _Err
from wit_world.imports import cluster as _cluster
from wit_world.imports import types as _types

_STRATEGIES = {
    "PACK": _cluster.PlacementStrategy.PACK,
    "SPREAD": _cluster.PlacementStrategy.SPREAD,
    "STRICT_PACK": _cluster.PlacementStrategy.STRICT_PACK,
    "STRICT_SPREAD": _cluster.PlacementStrategy.STRICT_SPREAD,
}


class PlacementGroup:
    """A reserved placement group: ``id``, ``bundle_specs``, and the node
    of each bundle (``bundle_nodes``)."""

    def __init__(self, id, bundle_specs, bundle_nodes):
        self.id = id
        self.bundle_specs = bundle_specs
        self.bundle_nodes = bundle_nodes

    @property
    def bundle_count(self):
        return len(self.bundle_specs)

    def ready(self):
        """A ref that is ready once the group is (wray reserves a group when
        it is created, so at once)."""
        import wray

        return wray.put(True)

    def wait(self, timeout_seconds=30):
        """True: the group is reserved."""
        return True

    def __repr__(self):
        return f"PlacementGroup(id={self.id}, bundles={self.bundle_specs})"

    def __reduce__(self):
        return (PlacementGroup, (self.id, self.bundle_specs, self.bundle_nodes))


def placement_group(bundles, strategy="PACK", name="", lifetime=None):
    """Reserves ``bundles`` (a list of ``{"CPU": 1, ...}`` dicts) on the nodes
    ``strategy`` chooses (PACK, SPREAD, STRICT_PACK or STRICT_SPREAD).
    Raises ``ValueError`` if the cluster cannot hold them now."""
    import wray

    if strategy not in _STRATEGIES:
        raise ValueError(f"unknown placement strategy {strategy!r}: use one of {', '.join(_STRATEGIES)}")
    if not bundles or not all(isinstance(b, dict) and b for b in bundles):
        raise ValueError("bundles must be a non-empty list of non-empty resource dicts")
    wit_bundles = [[_types.ResourceAmount(name=k, amount=float(v)) for k, v in b.items()] for b in bundles]
    try:
        group = _cluster.create_placement_group(wit_bundles, _STRATEGIES[strategy])
    except _Err as err:
        if isinstance(err.value, _types.Error_InvalidArgument):
            raise ValueError(err.value.value) from None
        wray._raise(err)
    return PlacementGroup(group.id, [dict(b) for b in bundles], list(group.nodes))


def remove_placement_group(placement_group):
    """Frees the group's resources; what runs in it keeps running."""
    import wray

    wray._call(_cluster.remove_placement_group, placement_group.id)


def get_current_placement_group():
    """None: wray does not track the group a task runs in."""
    return None
