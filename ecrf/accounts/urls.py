from django.contrib.auth import views as auth_views
from django.urls import include, path

from ecrf.accounts import views, views_two_factor

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
]
