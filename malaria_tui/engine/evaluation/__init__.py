"""Scoring models: metrics at a threshold, ROC and operating points, and a run scored on data."""
