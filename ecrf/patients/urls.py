from django.urls import path

from ecrf.patients import views, views_randomisation

# The patient page, enrolment and screen failure (they read the forms) are the crfs app's,
# added to this namespace in ecrf/urls.py, as are the upcoming visits (the reminders app's).
app_name = "patients"
patient = "<str:subject_code>/"
urlpatterns = [
    path("", views.patient_list, name="list"),
    path("new/", views.patient_create, name="create"),
    path("allocation-lists/", views_randomisation.allocation_lists, name="allocation_lists"),
    path(
        "allocation-lists/<int:list_id>/",
        views_randomisation.allocation_list_detail,
        name="allocation_list_detail",
    ),
    path(patient + "end/", views.patient_end_view, name="end"),
    path(patient + "plan-inclusion/", views.patient_plan_inclusion_view, name="plan_inclusion"),
    path(patient + "unscheduled/", views.visit_add_unscheduled_view, name="unscheduled"),
    path(patient + "unblind/", views_randomisation.patient_unblind, name="unblind"),
]
