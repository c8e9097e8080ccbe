"""Writes of the safety domain: adverse events, SAE reports, safety-lab prompts.

Every function here is keyword-only and atomic, checks its rules (`ecrf.safety.rules`)
before saving anything, writes under an audit context, and queues emails on commit. Views
only translate requests into these calls and `ValidationError`s back into form errors.
One module per concern; the public names are importable from here.
"""

from ecrf.safety.rules import ae_problems
from ecrf.safety.services.adverse_events import ae_create, ae_update
from ecrf.safety.services.lab_alerts import lab_alert_dismiss, lab_alert_limits, lab_alerts_refresh
from ecrf.safety.services.sae_reports import (
    ae_authority_reported,
    sae_acknowledge,
    sae_follow_up,
    sae_submit_initial,
)

__all__ = [
    "ae_authority_reported",
    "ae_create",
    "ae_problems",
    "ae_update",
    "lab_alert_dismiss",
    "lab_alert_limits",
    "lab_alerts_refresh",
    "sae_acknowledge",
    "sae_follow_up",
    "sae_submit_initial",
]
