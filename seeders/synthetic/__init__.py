"""Synthetic data: values invented to fit every column and constraint."""
