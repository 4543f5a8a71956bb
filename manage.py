#!/usr/bin/env python
"""Django's command-line utility for AgencyOps."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agencyops.settings")
    from django.core.management import execute_from_command_line

    # Whoever runs manage.py is the operator: commands see every organization. Requests served
    # from here (runserver, serve_all) open their own scope per request.
    from kernel.tenancy import system_scope

    with system_scope():
        execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
