"""Cursor pages: a big study pages in constant time (no OFFSET, no COUNT)."""

from __future__ import annotations

from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

# A primary key as PostgreSQL's bigint takes it.
_LARGEST = 2**63 - 1


class Cursor(CursorPagination):
    ordering = "pk"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request):
        """A crafted cursor whose position is no id is the invalid cursor's 404, not a
        query that fails."""
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            position = cursor.position
            if not position.isdigit() or int(position) > _LARGEST:
                raise NotFound(self.invalid_cursor_message)
        return cursor


class NewestFirst(Cursor):
    """As the screen lists them: the newest first (export jobs)."""

    ordering = "-pk"
