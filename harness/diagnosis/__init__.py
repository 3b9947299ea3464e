"""Diagnosis of why a backend diverges: locate where in the model the numbers part ways."""
