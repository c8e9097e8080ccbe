"""Test personas and two-factor login.

Monitors, data managers and administrators see no study page before a second factor. The
suite's `client.force_login(persona)` stands for a full login, so tests/conftest.py makes
it give the second factor too (`force_login_verified`): a confirmed TOTP device for the
persona and the session key django-otp's `login(request, device)` would set. A test of the
requirement itself logs in with the password only: `login_unverified(client, user)`.
"""

from __future__ import annotations

import time

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP, hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from ecrf.accounts.two_factor import two_factor_required

_force_login = Client.force_login


def login_unverified(client, user, backend=None) -> None:
    """Signed in with the password only: no second factor in the session."""
    _force_login(client, user, backend)


def totp_device(user) -> TOTPDevice:
    """The persona's confirmed authenticator app (made on first use)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="test phone", confirmed=True)


def mark_verified(client, user) -> TOTPDevice:
    device = totp_device(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


def force_login_verified(self, user, backend=None) -> None:
    _force_login(self, user, backend)
    if two_factor_required(user):
        mark_verified(self, user)


def totp_code(device: TOTPDevice) -> str:
    """The code the person's app shows now; a later time step's (the next window, within
    the device's tolerance) when the code of this one was used already, as for a second
    login within the same 30 seconds."""
    device.refresh_from_db()
    now = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    now.time = time.time()
    step = max(now.t(), device.last_t + 1)
    return f"{hotp(device.bin_key, step, digits=device.digits):0{device.digits}d}"
