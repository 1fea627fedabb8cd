"""The JSON API under /api/v1, for client systems acting for an authority (see README, "JSON API")."""
