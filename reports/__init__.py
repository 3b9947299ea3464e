"""Rendering of results files into HTML, markdown and JUnit reports."""
