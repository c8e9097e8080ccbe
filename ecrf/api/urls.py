from django.urls import path, re_path
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from ecrf.api import pages, views, views_exports, views_review, views_safety

STUDY = "v1/studies/<str:study_code>/"
VISIT_FORM = (
    STUDY + "patients/<str:subject_code>/visits/<str:visit_code>/<int:repeat>/forms/"
    "<str:form_code>/"
)

app_name = "api"
# The schema and its interactive docs show no study data: readable before any token.
PUBLIC = {"authentication_classes": [], "permission_classes": [AllowAny]}
urlpatterns = [
    path("schema/", views.Schema.as_view(**PUBLIC), name="schema"),
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api:schema", **PUBLIC),
        name="docs",
    ),
    path("v1/studies/", views.StudyList.as_view(), name="studies"),
    path(STUDY, views.StudyDetail.as_view(), name="study"),
    path(STUDY + "sites/", views.SiteList.as_view(), name="sites"),
    path(STUDY + "protocol/", views.ProtocolDetail.as_view(), name="protocol"),
    path(STUDY + "patients/", views.PatientList.as_view(), name="patients"),
    path(STUDY + "patients/<str:subject_code>/", views.PatientDetail.as_view(), name="patient"),
    path(STUDY + "forms/<str:form_code>/", views.FormDataList.as_view(), name="form_data"),
    path(VISIT_FORM, views.FormInstance.as_view(), name="form_instance"),
    path(STUDY + "adverse-events/", views_safety.AdverseEventList.as_view(), name="aes"),
    path(
        STUDY + "patients/<str:subject_code>/adverse-events/",
        views_safety.PatientAdverseEvents.as_view(),
        name="patient_aes",
    ),
    path(
        STUDY + "patients/<str:subject_code>/adverse-events/<int:number>/",
        views_safety.AdverseEventDetail.as_view(),
        name="ae",
    ),
    path(
        STUDY + "patients/<str:subject_code>/adverse-events/<int:number>/sae-reports/",
        views_safety.SaeReportSubmit.as_view(),
        name="sae_submit",
    ),
    path(STUDY + "sae-reports/", views_safety.SaeReportList.as_view(), name="sae_reports"),
    path(STUDY + "queries/", views_review.QueryList.as_view(), name="queries"),
    path(STUDY + "queries/<int:query_id>/", views_review.QueryDetail.as_view(), name="query"),
    path(
        STUDY + "queries/<int:query_id>/answer/",
        views_review.QueryAnswer.as_view(),
        name="query_answer",
    ),
    path(STUDY + "sdv/", views_review.SdvList.as_view(), name="sdv"),
    path(STUDY + "signatures/", views_review.SignatureList.as_view(), name="signatures"),
]

# The export jobs, through the export screen's own form, jobs and download.

urlpatterns += [
    path("v1/exports/", views_exports.ExportJobList.as_view(), name="exports"),
    path("v1/exports/<int:job_id>/", views_exports.ExportJobDetail.as_view(), name="export"),
    path(
        "v1/exports/<int:job_id>/download/",
        views_exports.ExportJobDownload.as_view(),
        name="export_download",
    ),
]

# Last: an address no route above takes is the API's JSON 404 (a negative id, a "/" inside
# a code), not the site's HTML page.
urlpatterns.append(re_path(r"^", views.not_found))

# The user's own tokens, a profile page beside /profile/reminders/: no namespace, included
# at profile/api-tokens/ in ecrf/urls.py.
profile_urlpatterns = [
    path("", pages.api_tokens, name="api_tokens"),
    path("<int:token_id>/revoke/", pages.api_token_revoke, name="api_token_revoke"),
]
