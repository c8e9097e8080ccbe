from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from ecrf.api import views

STUDY = "v1/studies/<str:study_code>/"
VISIT_FORM = (
    STUDY + "patients/<str:subject_code>/visits/<str:visit_code>/<int:repeat>/forms/"
    "<str:form_code>/"
)

app_name = "api"
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("v1/studies/", views.StudyList.as_view(), name="studies"),
    path(STUDY, views.StudyDetail.as_view(), name="study"),
    path(STUDY + "sites/", views.SiteList.as_view(), name="sites"),
    path(STUDY + "protocol/", views.ProtocolDetail.as_view(), name="protocol"),
    path(STUDY + "patients/", views.PatientList.as_view(), name="patients"),
    path(STUDY + "patients/<str:subject_code>/", views.PatientDetail.as_view(), name="patient"),
    path(STUDY + "forms/<str:form_code>/", views.FormDataList.as_view(), name="form_data"),
    path(VISIT_FORM, views.FormInstance.as_view(), name="form_instance"),
]
