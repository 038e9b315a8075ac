"""Reviewing suspect labels: cells whose out-of-fold probabilities contradict their given label,
found by confident learning (:mod:`.suspects`); the decisions a person makes about them go to a
label overlay (:mod:`malaria_tui.engine.data.label_overlay`), never to the images."""
