"""The review pages: `review:` under /studies/<code>/review/, and the patient's audit trail
served under the patients app's URL names (see ecrf/urls.py)."""

from django.urls import path

from ecrf.review import views

app_name = "review"
urlpatterns = [
    path("sdv/", views.matrix, name="matrix"),
    path("sdv/visits/<int:visit_id>/", views.verify_visit, name="visit"),
    path("sdv/forms/<int:entry_id>/", views.verify_form, name="form"),
]

patient = "<str:subject_code>/"
patient_urlpatterns = [
    path(patient + "audit/", views.patient_audit, name="audit"),
]
