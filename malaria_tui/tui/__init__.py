"""The Textual front end of malaria-tui.

Nothing here is imported by the engine; TensorFlow is only imported by a background thread
after the first frame (see :mod:`malaria_tui.tui.app`).
"""
