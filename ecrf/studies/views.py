from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.shortcuts import render

from ecrf.patients.models import Patient
from ecrf.studies.models import Study


@login_required
def study_chooser(request):
    """The studies the user belongs to, their roles, and how many patients they can see."""
    studies = list(Study.objects.visible_to(request.user))
    counts = dict(
        Patient.objects.visible_to(request.user)
        .values_list("study_id")
        .annotate(n=Count("id"))
        .values_list("study_id", "n")
    )
    memberships = {}
    for membership in request.user.memberships.filter(active=True).select_related("site"):
        memberships.setdefault(membership.study_id, []).append(membership)
    rows = [(study, memberships.get(study.pk, []), counts.get(study.pk, 0)) for study in studies]
    return render(request, "studies/chooser.html", {"rows": rows})
