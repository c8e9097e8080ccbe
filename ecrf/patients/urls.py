from django.urls import path

from ecrf.patients import views

app_name = "patients"
urlpatterns = [
    path("", views.patient_list, name="list"),
    path("new/", views.patient_create, name="create"),
    path("<str:subject_code>/", views.patient_detail, name="detail"),
    path("<str:subject_code>/audit/", views.patient_audit, name="audit"),
]
