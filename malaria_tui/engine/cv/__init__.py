"""Patient-level cross-validation: folds trained as a grid, out-of-fold probabilities, the fold
ensemble scored on the outer test split (``engine/cvdir.py`` names the files, :mod:`.runner` runs them)."""
