"""pytcp.link package."""
