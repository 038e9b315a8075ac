"""The TensorFlow side of malaria-tui.

Importing this package is cheap: TensorFlow is imported only inside the modules that need it,
so the CLI's ``--help`` and the TUI's first frame never wait for it. Nothing here imports
Textual or Rich; progress leaves the engine as typed events (:mod:`malaria_tui.engine.events`).
"""
