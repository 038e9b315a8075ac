"""Reusable widgets: half-block cell images, charts, the top bar."""
