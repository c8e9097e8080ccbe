"""The screens of the API: a person's own tokens, on their profile (/profile/api-tokens/).

The key of a new token is on the response of its POST and nowhere else: not in a redirect
URL, the messages' cookie or the session, and the response is not cached. A reload shows
only its prefix.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from ecrf.api.models import ApiToken
from ecrf.api.tokens import token_create, token_revoke

DEFAULT_DAYS = 90


class TokenForm(forms.Form):
    """Reads what was typed; the rules (a name, the longest validity) are token_create's,
    so its messages land on these fields."""

    name = forms.CharField(
        label=gettext_lazy("Name"),
        required=False,
        help_text=ApiToken._meta.get_field("name").help_text,
        widget=forms.TextInput(attrs={"maxlength": 100, "autocomplete": "off"}),
    )
    days = forms.IntegerField(label=gettext_lazy("Valid for (days)"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        longest = settings.API_TOKEN_MAX_DAYS
        self.fields["days"].initial = min(DEFAULT_DAYS, longest)
        self.fields["days"].widget.attrs.update({"min": 1, "max": longest})
        self.fields["days"].help_text = _(
            "From 1 to %(longest)d days: after that the API refuses the token."
        ) % {"longest": longest}


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request):
    """The user's tokens, newest first, and the form for a new one."""
    form = TokenForm()
    created = key = None
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            try:
                created, key = token_create(
                    user=request.user,
                    name=form.cleaned_data["name"],
                    days=form.cleaned_data["days"],
                    request=request,
                )
            except ValidationError as refused:
                form.add_error(None, refused)
            except PermissionDenied as refused:
                form.add_error(None, str(refused))
            else:
                form = TokenForm()
    return render(
        request,
        "api/tokens.html",
        {
            "form": form,
            "tokens": list(ApiToken.objects.filter(user=request.user)),
            "created": created,
            "key": key,
            "invalid": bool(form.errors),
            "example_url": request.build_absolute_uri(reverse("api:studies")),
        },
    )


@login_required
@require_POST
def api_token_revoke(request, token_id: int):
    # Among the user's own tokens only: anyone else's id is not found.
    token = get_object_or_404(ApiToken.objects.filter(user=request.user), pk=token_id)
    token = token_revoke(token=token, by=request.user, request=request)
    messages.success(
        request,
        _("The token “%(name)s” (%(prefix)s…) is revoked: the API refuses its key from now on.")
        % {"name": token.name, "prefix": token.prefix},
    )
    return redirect("api_tokens")
