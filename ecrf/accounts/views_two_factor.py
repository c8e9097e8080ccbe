"""Two-factor login screens: enrolment (QR code, secret, first code, backup codes), the code
after the password, and the account's two-factor status."""

from __future__ import annotations

import io
from base64 import b32encode
from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache

from ecrf.accounts import two_factor
from ecrf.accounts.forms import CodeForm, VerifyForm


def _next(request) -> str:
    """Where to go once verified: a path of this site (never a view name: redirect() would
    try to reverse `?next=0`), else the study chooser."""
    url = request.POST.get("next") or request.GET.get("next") or ""
    if url.startswith("/") and url_has_allowed_host_and_scheme(
        url, {request.get_host()}, request.is_secure()
    ):
        return url
    return reverse("studies:chooser")


def _add_errors(form, error: ValidationError) -> None:
    for field, messages in error.message_dict.items():
        for message in messages:
            form.add_error(field if field in form.fields else None, message)


@never_cache
@login_required
def setup(request):
    """Enrolment while the account has no device; its two-factor status once it has."""
    user = request.user
    if two_factor.confirmed_totp_device(user) is not None:
        if not user.is_verified():
            return redirect(f"{reverse('two_factor:verify')}?{urlencode({'next': _next(request)})}")
        # New backup codes, after a code from the app: the old ones stop working.
        renew = CodeForm(request.POST or None)
        if request.method == "POST" and renew.is_valid():
            try:
                codes = two_factor.backup_codes_renew(
                    request=request, user=user, code=renew.cleaned_data["code"]
                )
            except ValidationError as error:
                _add_errors(renew, error)
            else:
                return render(
                    request,
                    "registration/two_factor_backup_codes.html",
                    {"codes": codes, "next": reverse("two_factor:setup")},
                )
        return render(
            request,
            "registration/two_factor_status.html",
            {
                "required": two_factor.two_factor_required(user),
                "backup_left": two_factor.backup_codes_left(user),
                "renew": renew,
            },
            status=400 if renew.errors else 200,
        )
    device = two_factor.totp_device_pending(user=user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = two_factor.totp_enrol(
                request=request, user=user, device=device, code=form.cleaned_data["code"]
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            return render(
                request,
                "registration/two_factor_backup_codes.html",
                {"codes": codes, "next": _next(request)},
            )
    secret = b32encode(device.bin_key).decode()
    return render(
        request,
        "registration/two_factor_setup.html",
        {
            "form": form,
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "required": two_factor.two_factor_required(user),
            "next": _next(request),
        },
    )


@never_cache
@login_required
def qr_code(request):
    """The pending device's QR code as an SVG image (the enrolment page's <img>)."""
    device = two_factor.totp_device_pending(user=request.user)
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage)
    out = io.BytesIO()
    image.save(out)
    return HttpResponse(out.getvalue(), content_type="image/svg+xml")


@never_cache
@login_required
def verify(request):
    """The second factor after the password."""
    user = request.user
    if two_factor.confirmed_totp_device(user) is None:
        return redirect(f"{reverse('two_factor:setup')}?{urlencode({'next': _next(request)})}")
    if user.is_verified():
        return redirect(_next(request))
    form = VerifyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            two_factor.two_factor_verify(request=request, user=user, code=form.cleaned_data["code"])
        except ValidationError as error:
            _add_errors(form, error)
        else:
            return redirect(_next(request))
    return render(
        request, "registration/two_factor_verify.html", {"form": form, "next": _next(request)}
    )
