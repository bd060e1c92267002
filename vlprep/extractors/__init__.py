"""Extractors: media in, arrays and records out. They know nothing of Ray or of the feature store."""
