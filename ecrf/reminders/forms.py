from django import forms
from django.utils.translation import gettext_lazy as _

from ecrf.accounts.models import Language
from ecrf.reminders.models import Delivery


class LanguageForm(forms.Form):
    language = forms.ChoiceField(
        label=_("Language"),
        choices=Language.choices,
        help_text=_(
            "The language of the emails you receive; saving it here also switches your screens."
        ),
    )


class ReminderSettingsForm(forms.Form):
    delivery = forms.ChoiceField(
        label=_("Delivery"),
        choices=Delivery.choices,
        widget=forms.RadioSelect,
        help_text=_("The digest gathers a day's visit reminders in one email at the sending hour."),
    )
    visit_reminders = forms.BooleanField(
        label=_("Visit and pregnancy test reminders"),
        required=False,
        help_text=_(
            "SAE and SUSAR reminders are always sent, each at once: they cannot be switched off."
        ),
    )
