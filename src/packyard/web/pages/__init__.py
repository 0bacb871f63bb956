"""Console pages, one module per area. Handlers are a few lines: parse, call one loader, render."""
