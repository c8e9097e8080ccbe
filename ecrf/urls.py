from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("ecrf.core.urls")),
    path("accounts/", include("ecrf.accounts.urls")),
    path("studies/", include("ecrf.studies.urls")),
    path("studies/<str:study_code>/patients/", include("ecrf.patients.urls")),
    path("studies/<str:study_code>/patients/", include("ecrf.crfs.urls")),
    path("studies/<str:study_code>/", include("ecrf.safety.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
