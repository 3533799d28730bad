"""``python -m fftconv`` runs the command-line tool."""

from .cli import run

raise SystemExit(run())
