"""The studies' admin pages are registered in `ecrf.accounts.admin`: they are scoped to the
studies a user belongs to, which only the accounts app above this one knows."""
