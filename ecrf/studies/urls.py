from django.urls import path

from ecrf.studies import views

app_name = "studies"
urlpatterns = [
    path("", views.study_chooser, name="chooser"),
]
