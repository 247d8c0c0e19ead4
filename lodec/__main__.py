"""``python -m lodec`` runs the CLI."""

from .cli import main

main()
