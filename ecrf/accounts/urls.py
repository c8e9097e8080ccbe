from django.contrib.auth import views as auth_views
from django.urls import include, path

from ecrf.accounts import views, views_people, views_two_factor

two_factor_urls = (
    [
        path("", views_two_factor.setup, name="setup"),
        path("qr.svg", views_two_factor.qr_code, name="qr"),
        path("verify/", views_two_factor.verify, name="verify"),
    ],
    "two_factor",
)

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("locked/", views.locked_accounts, name="locked_accounts"),
    path("two-factor/", include(two_factor_urls)),
    path(
        "invitation/<str:uidb64>/<str:token>/",
        views_people.invitation_accept_view,
        name="invitation_accept",
    ),
]

# Under studies/<study_code>/users/ (ecrf/urls.py).
study_urlpatterns = [
    path("", views_people.study_users, name="study_users"),
    path(
        "<int:membership_id>/deactivate/",
        views_people.membership_change,
        {"action": "deactivate"},
        name="membership_deactivate",
    ),
    path(
        "<int:membership_id>/role/",
        views_people.membership_change,
        {"action": "role"},
        name="membership_role",
    ),
    path(
        "<int:membership_id>/two-factor-reset/",
        views_people.membership_change,
        {"action": "two_factor_reset"},
        name="two_factor_reset",
    ),
]
