"""`manage.py form_index_check`: does the form index agree with every form table?

Read-only, safe on a production database; exits with an error naming each disagreement.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ecrf.patients.form_index import form_index_problems, indexed_models


class Command(BaseCommand):
    help = "Compare the form index with the form tables (read-only)."

    def handle(self, *args, **options):
        problems = form_index_problems()
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(
                f"The form index disagrees with the forms: {len(problems)} problem(s)."
            )
        codes = ", ".join(sorted(model.index_code() for model in indexed_models()))
        self.stdout.write(self.style.SUCCESS(f"The form index agrees with the forms ({codes})."))
