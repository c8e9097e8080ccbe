"""With DEBUG off (the demo, production) a wrong address gets the application's page."""

from __future__ import annotations


def test_unknown_address_is_the_apps_own_404_not_the_url_list(client, world):
    client.force_login(world.alice)
    response = client.get("/studies/NCT00479934/nowhere/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 404
    body = response.content.decode()
    assert 'data-testid="error-page"' in body
    assert "This page does not exist or you do not have access to it." in body
    assert "URLconf" not in body and "urlpatterns" not in body
    # The page keeps the navigation: the user is one click from their studies.
    assert 'href="/studies/"' in body


def test_forbidden_action_is_the_apps_own_403(client, world):
    client.force_login(world.monica)  # a monitor reads, never writes
    response = client.get("/studies/NCT00479934/patients/new/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403
    body = response.content.decode()
    assert 'data-testid="error-page"' in body
    assert "Your role does not allow this action." in body
