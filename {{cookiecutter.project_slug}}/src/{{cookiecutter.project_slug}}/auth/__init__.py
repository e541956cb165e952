"""Who is calling: the principal, and the authentication `api/deps.py` puts on routes."""
