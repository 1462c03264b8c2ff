"""``python -m lite.cli``: the ``shoplake`` command (how ``up`` starts its children)."""

from lite.cli import main

main()
