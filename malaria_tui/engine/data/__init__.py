"""Data sources, patient-aware splits and the tf.data pipeline (the latter imports TensorFlow)."""
