"""The review pages served under the patients app's URL names (see ecrf/urls.py)."""

from django.urls import path

from ecrf.review import views

patient = "<str:subject_code>/"
urlpatterns = [
    path(patient + "audit/", views.patient_audit, name="audit"),
]
