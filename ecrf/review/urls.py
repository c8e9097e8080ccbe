"""The review's pages.

`patient_urlpatterns` are served under the patients app's URL names (see ecrf/urls.py): the
audit trail is a page of the patient. `review_urlpatterns` are the review's own, under
/studies/<code>/review/ (the `review` namespace): source data verification, queries,
freezing, locking and lifting data, the investigator's signatures and the printable
casebook; the dashboards and the lists behind them.
"""

from django.urls import path

from ecrf.review import views, views_dashboard, views_queries, views_sdv, views_signatures

patient = "<str:subject_code>/"
patient_urlpatterns = [
    path(patient + "audit/", views.patient_audit, name="audit"),
]

review_patient = "patients/<str:subject_code>/"
review_urlpatterns = [
    path("dashboard/", views_dashboard.study_dashboard_view, name="dashboard"),
    path("dashboard/sites/<str:site_code>/", views_dashboard.site_dashboard, name="site_dashboard"),
    path("visits/overdue/", views_dashboard.overdue_visit_list, name="overdue_visits"),
    path("deviations/", views_dashboard.deviation_list, name="deviations"),
    path("sdv/", views_sdv.matrix, name="matrix"),
    path("sdv/visits/<int:visit_id>/", views_sdv.verify_visit, name="visit"),
    path("sdv/forms/<int:entry_id>/", views_sdv.verify_form, name="form"),
    path("queries/", views_queries.query_list, name="queries"),
    path("queries/sites/<str:site_code>/", views_queries.query_list, name="site_queries"),
    path("queries/<int:query_id>/", views_queries.query_detail, name="query"),
    path("queries/raise/<int:entry_id>/", views_queries.query_raise_view, name="query_raise"),
    path("locks/", views.study_locks, name="locks"),
    path("unblind/", views.study_unblind_view, name="study_unblind"),
    path("locks/<int:lock_id>/lift/", views.lock_lift, name="lift"),
    path(review_patient + "locks/", views.casebook_lock, name="casebook_lock"),
    path(
        review_patient + "visits/<str:code>/<int:repeat>/locks/",
        views.visit_lock,
        name="visit_lock",
    ),
    path("signatures/", views_signatures.awaiting_signature, name="signatures"),
    path(review_patient + "sign/", views_signatures.casebook_sign_view, name="casebook_sign"),
    path(review_patient + "print/", views_signatures.casebook_print, name="casebook_print"),
    path(
        review_patient + "visits/<str:code>/<int:repeat>/sign/",
        views_signatures.visit_sign_view,
        name="visit_sign",
    ),
]
