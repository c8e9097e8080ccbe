from django.urls import path
from django.views.generic import RedirectView

from ecrf.core.views import health

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="studies:chooser"), name="home"),
    path("health/", health, name="health"),
]
