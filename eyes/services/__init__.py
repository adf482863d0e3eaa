"""Use cases. Each function owns its transaction; routes and the CLI only parse and render."""
