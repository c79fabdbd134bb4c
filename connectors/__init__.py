"""Connectors to the world outside the warehouse: source systems in, provincial exchange out."""
