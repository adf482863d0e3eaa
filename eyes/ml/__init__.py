"""Machine learning: backbone, embeddings, heads, training. Knows nothing of the web or the database."""
