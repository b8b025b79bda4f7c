"""The Improvement Year campaign as an application on the engine: the demo year and the report.

This package imports the engine; the engine never imports it.
"""
