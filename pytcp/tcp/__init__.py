"""pytcp.tcp package."""
