from django.urls import path

from ecrf.crfs import views

app_name = "crfs"
visit = "<str:subject_code>/visits/<str:code>/<int:repeat>/"
urlpatterns = [
    path(visit, views.visit_detail, name="visit"),
    path(visit + "forms/<str:form_code>/", views.crf_edit, name="form"),
    path(visit + "forms/<str:form_code>/<int:instance_id>/", views.crf_edit, name="form_instance"),
    path(visit + "forms/<str:form_code>/preview/", views.crf_preview, name="preview"),
]
