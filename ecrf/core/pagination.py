"""One page of a list, and the query string its pager links keep (filters, not the page)."""

from __future__ import annotations

from django.core.paginator import Page, Paginator


def paginate(request, rows, *, size: int, param: str = "page") -> tuple[Page, str]:
    """The page `param` asks for (the last one if past the end), and the request's query
    string without `param`, for templates/_pager.html."""
    page = Paginator(rows, size).get_page(request.GET.get(param))
    query = request.GET.copy()
    query.pop(param, None)
    return page, query.urlencode()
