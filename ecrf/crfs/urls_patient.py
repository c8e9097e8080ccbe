"""The patient pages this app serves under the patients app's URL names (see ecrf/urls.py)."""

from django.urls import path

from ecrf.crfs import views_patient

patient = "<str:subject_code>/"
urlpatterns = [
    path(patient, views_patient.patient_detail, name="detail"),
    path(patient + "enrol/", views_patient.patient_enrol_view, name="enrol"),
    path(patient + "screen-failure/", views_patient.patient_screen_fail_view, name="screen_fail"),
]
