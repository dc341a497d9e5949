"""Ray's ``ray.util.scheduling_strategies``."""


class PlacementGroupSchedulingStrategy:
    """Run inside bundle ``placement_group_bundle_index`` of
    ``placement_group`` (-1: bundle 0 — wray does not pick a bundle with
    room)."""

    def __init__(self, placement_group, placement_group_bundle_index=-1, placement_group_capture_child_tasks=None):
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
