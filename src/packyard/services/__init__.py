"""Application services: one transaction per call, domain rules applied, storage via repos."""
