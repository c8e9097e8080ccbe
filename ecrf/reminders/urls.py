from django.urls import path

from ecrf.reminders import views

app_name = "reminders"
urlpatterns = [
    path("profile/reminders/", views.reminder_settings, name="settings"),
    path("studies/<str:study_code>/reminders/", views.reminder_log, name="log"),
    path(
        "studies/<str:study_code>/reminders/<int:reminder_id>/",
        views.reminder_detail,
        name="detail",
    ),
]

# The site's upcoming visits, with their reminders, keep their patients' URL name
# (`patients:upcoming`; merged into that namespace in ecrf/urls.py).
patient_urlpatterns = [
    path("upcoming/", views.upcoming_visits, name="upcoming"),
]
