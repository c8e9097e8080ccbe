"""System checks: the form registry and the protocol files agree, both ways.

The registry is the models themselves: each model that implements a protocol form
declares its code (FORM_CODE: the CRF models, and safety's adverse event log);
crfs.models.FORM_MODELS collects the CRF ones, and studies.protocol.form_codes() reads
every installed model's from Django's app registry to validate a protocol file without
importing crfs. These checks run at startup, in `manage.py check` and before the tests:
a CRF model without a code, two models with one code, a protocol file naming a form no
model implements, a form model that no protocol file uses.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from django.apps import apps
from django.core import checks

from ecrf.crfs.base import CrfBase
from ecrf.studies.loader import protocol_files
from ecrf.studies.protocol import ProtocolError, read_protocol


def registry_problems(models, paths: list[Path]) -> list[checks.CheckMessage]:
    """What is wrong between these form models and these protocol files ([]: nothing)."""
    problems = [
        checks.Error(
            f"{model.__name__} declares no FORM_CODE.",
            hint="Give it the code of the protocol form it implements.",
            obj=model,
            id="crfs.E001",
        )
        for model in models
        if not model.FORM_CODE
    ]
    declared = Counter(model.FORM_CODE for model in models if model.FORM_CODE)
    problems += [
        checks.Error(
            f"{count} models declare the form code {code!r}.",
            hint="A form code is implemented by one model.",
            id="crfs.E002",
        )
        for code, count in sorted(declared.items())
        if count > 1
    ]
    used, unread = set(), False
    for path in paths:
        try:
            protocol = read_protocol(path)
        except ProtocolError as exc:
            # A form no model implements among them: the schema knows the declared codes.
            problems.append(checks.Error(str(exc), obj=path.name, id="crfs.E003"))
            unread = True
            continue
        used |= {form.code for form in protocol.forms}
    if not unread:
        problems += [
            checks.Error(
                f"No protocol file uses the form {model.FORM_CODE!r} ({model.__name__}).",
                hint="List it in the protocol file that collects it, or remove the model.",
                obj=model,
                id="crfs.E004",
            )
            for model in models
            if model.FORM_CODE and model.FORM_CODE not in used
        ]
    return problems


def form_models() -> list:
    """The installed models that implement a protocol form: every CRF model (with its code
    or not), and any other model declaring a FORM_CODE."""
    return [
        model
        for model in apps.get_models()
        if issubclass(model, CrfBase) or getattr(model, "FORM_CODE", "")
    ]


@checks.register(checks.Tags.models)
def check_form_registry(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    return registry_problems(form_models(), protocol_files())
