"""The web layer: HTML pages and the JSON API. Routes parse, call a service, render."""
