"""``python -m simulator`` is the ``simulator`` command."""

from .cli import main

main()
