"""The visit page's brief "missing ..." under a form still in progress."""

from django import template

from ecrf.crfs.missing import missing_text

register = template.Library()


@register.filter
def missing_brief(instance) -> str:
    if instance is None or instance.status == instance.Status.COMPLETE:
        return ""
    return missing_text(instance, brief=True)
