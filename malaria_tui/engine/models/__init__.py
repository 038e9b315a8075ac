"""Model builders; see :mod:`malaria_tui.engine.models.registry` for the names."""
