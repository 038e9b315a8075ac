"""Training: the custom GradientTape loop, Keras ``fit``, checkpoints and the run orchestration."""
