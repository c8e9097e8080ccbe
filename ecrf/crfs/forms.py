"""Django forms for the CRF models: they render the page and parse what it posts.

The rules live on the models and crf_save runs them for every caller: the field
validators (impossible values, with the field and the allowed range), clean() across
fields, the scoring package's own input checks and the database constraints. A form shows
the model's field and clean() errors with its own, as a ModelForm does, but never queries
the constraints one by one. Fields that apply only under a condition (the model's
SHOW_IF: DLQI q7b after "no"; childbearing potential for women) carry `data-show-if` for
the page script, and a hidden answer is not an answer: it is blanked before the rules.
"""

from __future__ import annotations

from django import forms
from django.db import models
from django.forms.models import modelform_factory
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from ecrf.core.widgets import DateInput
from ecrf.crfs.base import choice_message
from ecrf.scoring.mrss import AREAS as MRSS_AREAS

# The mRSS grid, top to bottom as on the paper form: area, right side, left side (the
# midline areas have one score).
MRSS_ROWS = (
    (_("Face"), "face", None),
    (_("Anterior chest"), "anterior_chest", None),
    (_("Abdomen"), "abdomen", None),
    (_("Fingers"), "fingers_r", "fingers_l"),
    (_("Hand (dorsum)"), "hand_r", "hand_l"),
    (_("Forearm"), "forearm_r", "forearm_l"),
    (_("Upper arm"), "upper_arm_r", "upper_arm_l"),
    (_("Thigh"), "thigh_r", "thigh_l"),
    (_("Lower leg"), "lower_leg_r", "lower_leg_l"),
    (_("Foot (dorsum)"), "foot_r", "foot_l"),
)


def editable_fields(model) -> list[str]:
    return model.answer_fields()


class CrfFormMixin:
    """Shared behaviour of every CRF form: version, reason for change, warnings."""

    def setup_crf(self, *, form_code: str, needs_reason: bool, warnings=()):
        self.form_code = form_code
        self.fields["version"] = forms.IntegerField(widget=forms.HiddenInput, required=False)
        self.fields["reason"] = forms.CharField(
            label=_("Reason for change"),
            required=needs_reason,
            max_length=500,
            help_text=_("Required for any change after the first save; kept in the audit trail."),
            widget=forms.TextInput if needs_reason else forms.HiddenInput,
        )
        for warning in warnings:
            self.fields[f"confirm_{warning.code}"] = forms.BooleanField(
                label=_("I confirm: %s") % warning.message, required=True
            )
        for name, (controller, value) in self._show_if().items():
            if name in self.fields:
                self.fields[name].widget.attrs["data-show-if"] = f"{controller}={value}"
        if form_code == "mrss":
            self._mrss_layout()
        for field in self.fields.values():
            if isinstance(field.widget, forms.Textarea):
                field.widget.attrs.setdefault("rows", 3)
            if isinstance(field.widget, forms.DateInput):
                field.widget = DateInput(attrs=field.widget.attrs)

    def _mrss_layout(self):
        """The paper form's grid: one row per area, right and left side by side."""
        grid = {name for _label, *sides in MRSS_ROWS for name in sides if name}
        grid.add("not_assessable_reason")
        self.mrss_rows = [
            (label, *(self[name] if name else None for name in sides))
            for label, *sides in MRSS_ROWS
        ]
        self.fields["not_assessable_reason"].widget.attrs["rows"] = 2  # beside the grid
        self.mrss_reason = self["not_assessable_reason"]
        self.mrss_head = [self[name] for name in ("exam_date", "assessor")]
        self.mrss_tail = [
            self[name]
            for name in self.fields
            if name not in grid and name not in ("exam_date", "assessor")
        ]

    def _show_if(self):
        model = getattr(getattr(self, "_meta", None), "model", None)
        return model.SHOW_IF if model is not None else {}

    def clean(self):
        cleaned = super().clean()
        if self._show_if():
            # Blanked before the model's clean() reads them, as crf_save does.
            shown = self.instance.without_hidden_answers(cleaned)
            cleaned.update({name: shown[name] for name in self._show_if() if name in cleaned})
        return cleaned

    def validate_constraints(self):
        # Not one query and savepoint per check constraint: the database enforces them on
        # save, and crf_save puts a refusal on its field.
        pass

    def confirmed_warnings(self) -> frozenset[str]:
        # Read from the POST, not from the fields: the confirmation boxes exist only on the
        # page that showed the warnings, and the next POST builds the form before the
        # service has found them again.
        return frozenset(
            name.removeprefix("confirm_")
            for name in self.data
            if name.startswith("confirm_")
            and forms.CheckboxInput().value_from_datadict(self.data, None, name)
        )

    def values(self) -> dict:
        return {
            name: self.cleaned_data[name]
            for name in editable_fields(self._meta.model)
            if name in self.cleaned_data
        }


def crf_form_class(model) -> type[forms.ModelForm]:
    return modelform_factory(
        model,
        form=type("CrfModelForm", (CrfFormMixin, forms.ModelForm), {}),
        fields=editable_fields(model),
        formfield_callback=_formfield,
    )


def _formfield(field: models.Field, **kwargs):
    if isinstance(field, models.BooleanField) and field.null:
        # Tri-state: yes / no / not answered yet (partial saves), never a silent "no".
        return TriStateField(label=field.verbose_name, help_text=field.help_text)
    formfield = field.formfield(**kwargs)
    if isinstance(formfield, forms.ChoiceField) and field.choices:
        formfield.error_messages["invalid_choice"] = choice_message(field)
    if field.name in MRSS_AREAS and isinstance(formfield, forms.ChoiceField):
        # Scored as on the paper form: one click per area, the blank "not assessable".
        formfield.model_choices = list(field.choices)
        formfield.choices = [(value, str(value)) for value, _label in field.choices]
        formfield.choices.append(("", _("n/a")))
        formfield.widget = forms.RadioSelect(choices=formfield.choices)
    return formfield


class TriStateRadioSelect(forms.RadioSelect):
    """Yes / No / Not answered as three radio buttons (one click, arrow keys between them).

    Renders the stored True / False / None checked: the values are the strings the
    buttons post, never Python's "True", which a plain Select compared to "true".
    """

    def format_value(self, value):
        return [{True: "true", False: "false"}.get(value, "")]


class TriStateField(forms.Field):
    """A yes/no question that may stay unanswered; anything else is refused by name."""

    widget = TriStateRadioSelect
    # "unknown" is what the page posted for "not answered" before these buttons.
    ANSWERS = {"true": True, "false": False, "": None, "unknown": None}

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)
        self.widget.choices = [("true", _("Yes")), ("false", _("No")), ("", _("Not answered"))]
        self.widget.attrs["data-tristate"] = ""

    def to_python(self, value):
        if value is None or value in (True, False):
            return value
        if isinstance(value, str) and value in self.ANSWERS:
            return self.ANSWERS[value]
        # Not echoed: the value may be anything, of any length.
        raise forms.ValidationError(
            _("%(field)s: answer Yes, No or Not answered.") % {"field": capfirst(str(self.label))},
            code="invalid",
        )

    def has_changed(self, initial, data):
        return initial != self.to_python(data)


class EligibilityForm(CrfFormMixin, forms.Form):
    """The protocol's checklist, one yes/no line per criterion, texts verbatim."""

    def __init__(self, *args, criteria, instance=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.criteria = criteria
        answers = (instance.answers if instance else None) or {}
        for criterion in criteria:
            kind = (_("Inclusion criterion") if criterion.kind == "inclusion"
                    else _("Exclusion criterion"))  # fmt: skip
            self.fields[f"criterion_{criterion.id}"] = forms.TypedChoiceField(
                label=f"{criterion.id} · {criterion.translation or criterion.text}",
                choices=[("", "—"), ("yes", _("Yes")), ("no", _("No"))],
                required=False,
                initial={True: "yes", False: "no"}.get(answers.get(criterion.id), ""),
                widget=forms.RadioSelect,
                # A translation is read first; the registry's English stays under it, as
                # it is the protocol's wording.
                help_text=format_html('{} <span lang="en" class="d-block fst-italic">{}</span>',
                                      kind, criterion.text)
                if criterion.translation else kind,
            )  # fmt: skip

    def clean(self):
        return forms.Form.clean(self)

    def values(self) -> dict:
        answers = {}
        for criterion in self.criteria:
            value = self.cleaned_data.get(f"criterion_{criterion.id}")
            answers[criterion.id] = {"yes": True, "no": False}.get(value)
        return {"answers": answers}
