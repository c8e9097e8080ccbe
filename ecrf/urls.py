from django.contrib import admin
from django.urls import include, path

from ecrf.accounts import urls as accounts_urls
from ecrf.api import urls as api_urls
from ecrf.crfs import urls_patient
from ecrf.patients import urls as patients_urls
from ecrf.patients.views import study_chooser
from ecrf.reminders import urls as reminders_urls
from ecrf.review import urls as review_urls

# URL names stay where the templates know them, and each view lives in the lowest app that
# may import what it shows (DESIGN.md, the direction of dependencies): the study chooser
# counts patients, so the patients app serves `studies:chooser`; the patient page,
# enrolment and screen failure read the forms, so the crfs app serves those `patients:` URLs.
studies_urls = ([path("", study_chooser, name="chooser")], "studies")
# The patient's audit trail names every app's rows: the review app serves `patients:audit`;
# the upcoming visits show their reminders: the reminders app serves `patients:upcoming`
# (first: "upcoming/" is not a subject code).
patient_urls = (
    reminders_urls.patient_urlpatterns
    + patients_urls.urlpatterns
    + urls_patient.urlpatterns
    + review_urls.patient_urlpatterns,
    patients_urls.app_name,
)

urlpatterns = [
    path("", include("ecrf.core.urls")),
    path("accounts/", include("ecrf.accounts.urls")),
    path("studies/", include(studies_urls)),
    path("studies/<str:study_code>/patients/", include(patient_urls)),
    path("studies/<str:study_code>/patients/", include("ecrf.crfs.urls")),
    path("studies/<str:study_code>/users/", include(accounts_urls.study_urlpatterns)),
    path("studies/<str:study_code>/", include("ecrf.safety.urls")),
    path(
        "studies/<str:study_code>/review/",
        include((review_urls.review_urlpatterns, "review")),
    ),
    path("", include("ecrf.reminders.urls")),
    path("profile/api-tokens/", include(api_urls.profile_urlpatterns)),
    path("exports/", include("ecrf.exports.urls")),
    path("api/", include("ecrf.api.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
