"""``python -m mspflow.cli``: the same as the ``mspflow`` command (used by ``mspflow worker --processes N``)."""

from mspflow.cli import main

main()
