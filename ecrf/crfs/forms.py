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

from ecrf.core.reasons import change_reason_missing
from ecrf.core.widgets import DateInput
from ecrf.crfs.base import AreaGrid, choice_message


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
            error_messages={"required": change_reason_missing()},
        )
        for warning in warnings:
            self.fields[f"confirm_{warning.code}"] = forms.BooleanField(
                label=_("I confirm: %s") % warning.message, required=True
            )
        for name, (controller, value) in self._show_if().items():
            if name in self.fields:
                self.fields[name].widget.attrs["data-show-if"] = f"{controller}={value}"
        model = self._model()
        if model is not None and model.AREA_GRID is not None:
            self._grid_layout(model.AREA_GRID)
        for field in self.fields.values():
            if isinstance(field.widget, forms.Textarea):
                field.widget.attrs.setdefault("rows", 3)
            if isinstance(field.widget, forms.DateInput):
                field.widget = DateInput(attrs=field.widget.attrs)

    def _grid_layout(self, grid: AreaGrid):
        """The paper form's grid (templates/crfs/_area_grid.html): one row per area, right
        and left side by side, the head fields above and the note beside it."""
        self.grid_rows = [
            (label, *(self[name] if name else None for name in sides))
            for label, *sides in grid.rows
        ]
        self.fields[grid.note].widget.attrs["rows"] = 2  # beside the grid
        self.grid_note = self[grid.note]
        self.grid_head = [self[name] for name in grid.head]
        placed = grid.fields | {grid.note, *grid.head}
        self.grid_tail = [self[name] for name in self.fields if name not in placed]

    def _model(self):
        return getattr(getattr(self, "_meta", None), "model", None)

    def _show_if(self):
        model = self._model()
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


def crf_form(model, data=None, *, instance=None, patient=None):
    """The form of a CRF model, unbound without data: built from the model's fields, or
    from the protocol's criteria for the patient's group for the eligibility checklist."""
    if model.PROTOCOL_CHECKLIST:
        criteria = patient.protocol_version.protocol.eligibility_for(patient.group or None)
        return EligibilityForm(data, criteria=criteria, instance=instance)
    return crf_form_class(model)(data, instance=instance)


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
    grid = getattr(field.model, "AREA_GRID", None)
    if grid is not None and field.name in grid.fields and isinstance(formfield, forms.ChoiceField):
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
