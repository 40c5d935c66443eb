"""The web layer: the JSON API, the console and the published log, all in one ASGI app."""
