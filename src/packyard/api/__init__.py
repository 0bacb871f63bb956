"""The HTTP layer: HCP wire models, rendering, routes and error mapping."""
