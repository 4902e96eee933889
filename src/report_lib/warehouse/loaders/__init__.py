"""Loaders: SQL push-down queries that return the small DataFrames the analyses take. One module per topic."""
