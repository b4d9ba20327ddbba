"""Payment providers behind one Protocol. Provider strings never leave this package."""
