"""Blueprints of the web app, one per audience or area."""
