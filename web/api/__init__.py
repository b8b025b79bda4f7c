"""The /api/v1 routers, one module per resource; `web.app.create_app` includes them."""
