"""``python -m customer_model_factory.cli``: the same as the ``cmf`` command."""

from . import main

main()
