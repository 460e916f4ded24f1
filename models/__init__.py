"""Genre taxonomy data (genres.yaml) and model cards, shipped as package data."""
