"""Packyard benchmark harness (issue 7): seeding, load generation, measurements, report."""
