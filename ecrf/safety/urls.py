from django.urls import path

from ecrf.safety import views

app_name = "safety"
log = "patients/<str:subject_code>/adverse-events/"
event = log + "<int:number>/"
urlpatterns = [
    path("safety/adverse-events/", views.site_ae_list, name="ae_list"),
    path("safety/sae/", views.sae_list, name="sae_list"),
    path(log, views.patient_ae_log, name="log"),
    path(log + "new/", views.ae_create, name="create"),
    path(log + "lab-alerts/<int:alert_id>/dismiss/", views.lab_alert_dismiss, name="dismiss"),
    path(event, views.ae_detail, name="event"),
    path(event + "edit/", views.ae_edit, name="edit"),
    path(event + "submit/", views.sae_submit, name="submit"),
    path(event + "follow-up/", views.sae_follow_up, name="follow_up"),
    path(event + "reports/<int:report>/acknowledge/", views.sae_acknowledge, name="acknowledge"),
    path(event + "authority-reported/", views.ae_authority_reported, name="authority"),
]
