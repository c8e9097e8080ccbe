from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path


class LoginView(auth_views.LoginView):
    """Django's login, then the screens in the language the person chose in their settings."""

    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            form.get_user().language,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )
        return response


urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
