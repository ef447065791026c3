"""The live sentiment dashboard: gold Delta tables -> JSON endpoint -> a self-refreshing page."""
