from django.contrib.auth import views as auth_views
from django.urls import include, path

from ecrf.accounts import views

two_factor_urls = (
    [
        path("", views.setup, name="setup"),
        path("qr.svg", views.qr_code, name="qr"),
        path("verify/", views.verify, name="verify"),
    ],
    "two_factor",
)

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("two-factor/", include(two_factor_urls)),
]
