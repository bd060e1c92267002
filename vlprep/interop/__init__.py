"""Moving region features between vlprep stores and the formats other projects read."""
