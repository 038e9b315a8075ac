"""One module per ``malaria-tui`` command: its ``add_arguments`` and its ``run``."""
