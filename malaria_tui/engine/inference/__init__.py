"""Using a trained model on new images: loading any exported form, and diagnosing folders."""
