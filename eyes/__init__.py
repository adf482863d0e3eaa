"""Eyes: a self-hosted photo platform whose tagger learns from its users."""
