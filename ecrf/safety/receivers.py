"""What the safety app does when another app's data change (connected in SafetyConfig.ready)."""

from __future__ import annotations

from ecrf.safety.services import lab_alerts_refresh


def safety_labs_saved(sender, *, instance, by, **kwargs) -> None:
    """A saved safety_labs form opens, updates or closes its lab alerts, in its transaction."""
    lab_alerts_refresh(labs=instance, by=by)
