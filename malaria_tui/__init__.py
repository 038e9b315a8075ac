"""malaria-tui: train, tune, evaluate and deploy malaria cell classifiers from the terminal."""

__version__ = "0.1.0"
