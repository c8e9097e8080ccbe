from django.urls import path

from ecrf.exports import views

app_name = "exports"
urlpatterns = [
    path("", views.export_list, name="list"),
    path("new/", views.export_new, name="new"),
    path("jobs/<int:job_id>/", views.export_job, name="job"),
    path("jobs/<int:job_id>/progress/", views.export_progress, name="progress"),
    path("jobs/<int:job_id>/download/", views.export_file, name="download"),
]
