"""The server: the FastAPI app, the API routers (/api/v1, /engine-rest), identity and the pages.

This package imports the engine; the engine never imports it.
"""
