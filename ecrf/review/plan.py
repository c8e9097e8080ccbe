"""The SDV plan of the protocol file, applied to a patient's forms.

The plan (`studies.protocol.SdvSpec`, the file's `sdv:` section) verifies every instance
of some forms (consent, eligibility, the primary endpoint), every serious adverse event
with its SAE reports, and the other forms of a sampled share of the patients. A patient
is in the sample when a keyed hash of the study and subject codes, with the deployment's
secret `SDV_SEED`, falls under the share: the same answer every time it is asked (a
patient never leaves or joins the sample), spread like a random draw, and not one the
sites can compute, since they never see the seed.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q

from ecrf.patients.models import FormIndexEntry, Patient
from ecrf.safety.models import AdverseEvent, SaeReport

# The forms whose instances count as serious: an adverse event marked serious, and the
# reports of one (a report exists only for a serious event, and stays once submitted).
AE_CODE = AdverseEvent.index_code()
SAE_CODE = SaeReport.index_code()


def subject_sampled(*, seed: str, study_code: str, subject_code: str, percent: int) -> bool:
    """Whether a subject falls in a `percent` % sample drawn with `seed` (HMAC-SHA256)."""
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    message = f"{study_code}:{subject_code}".encode()
    digest = hmac.new(seed.encode(), message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") * 100 < percent * 2**64


def sdv_sampled(patient: Patient) -> bool:
    """Whether the patient is in the sample whose every form is verified."""
    protocol = patient.protocol_version.protocol
    return subject_sampled(
        seed=settings.SDV_SEED,
        study_code=protocol.study.code,
        subject_code=patient.subject_code,
        percent=protocol.sdv.sample_percent,
    )


def with_seriousness(entries):
    """The entries with `serious` annotated: an SAE report, or a serious adverse event."""
    serious_event = AdverseEvent.objects.filter(pk=OuterRef("object_id"), serious=True)
    serious = Q(form_code=SAE_CODE) | Q(Q(form_code=AE_CODE), Exists(serious_event))
    return entries.annotate(serious=ExpressionWrapper(serious, output_field=BooleanField()))


def entry_serious(entry: FormIndexEntry) -> bool:
    """An SAE report, or a serious adverse event (annotated, or one query)."""
    if entry.form_code == SAE_CODE:
        return True
    if entry.form_code != AE_CODE:
        return False
    serious = getattr(entry, "serious", None)
    if serious is None:
        serious = AdverseEvent.objects.filter(pk=entry.object_id, serious=True).exists()
    return bool(serious)


def sdv_required(patient: Patient, form_code: str, entry: FormIndexEntry | None = None) -> bool:
    """Whether the plan has this form of the patient verified (`entry`: the instance, for an
    adverse event, whose seriousness decides)."""
    spec = patient.protocol_version.protocol.sdv
    serious = entry is not None and form_code in (AE_CODE, SAE_CODE) and entry_serious(entry)
    return spec.requires(form_code, serious=serious, sampled=sdv_sampled(patient))
