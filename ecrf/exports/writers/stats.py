"""Not built yet (issue 14): its formats are refused by name until they are."""

WRITERS: dict = {}
