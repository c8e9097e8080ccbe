from django.contrib.auth import views as auth_views
from django.urls import path

from ecrf.accounts import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "invitation/<str:uidb64>/<str:token>/",
        views.invitation_accept_view,
        name="invitation_accept",
    ),
]

# Under studies/<study_code>/users/ (ecrf/urls.py).
study_urlpatterns = [
    path("", views.study_users, name="study_users"),
    path(
        "<int:membership_id>/deactivate/",
        views.membership_change,
        {"action": "deactivate"},
        name="membership_deactivate",
    ),
    path(
        "<int:membership_id>/role/",
        views.membership_change,
        {"action": "role"},
        name="membership_role",
    ),
]
