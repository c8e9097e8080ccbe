"""The review's pages.

`patient_urlpatterns` are served under the patients app's URL names (see ecrf/urls.py): the
audit trail is a page of the patient. `review_urlpatterns` are the review's own, under
/studies/<code>/review/ (the `review` namespace): source data verification, freezing,
locking and lifting data, the investigator's signatures and the printable casebook.
"""

from django.urls import path

from ecrf.review import views, views_sdv, views_signatures

patient = "<str:subject_code>/"
patient_urlpatterns = [
    path(patient + "audit/", views.patient_audit, name="audit"),
]

review_patient = "patients/<str:subject_code>/"
review_urlpatterns = [
    path("sdv/", views_sdv.matrix, name="matrix"),
    path("sdv/visits/<int:visit_id>/", views_sdv.verify_visit, name="visit"),
    path("sdv/forms/<int:entry_id>/", views_sdv.verify_form, name="form"),
    path("locks/", views.study_locks, name="locks"),
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
