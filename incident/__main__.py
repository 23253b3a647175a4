"""`python -m incident` runs the CLI."""

from incident.cli import main

main()
