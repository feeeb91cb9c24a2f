"""Model weights the site serves: signing a reviewed model folder and verifying one before a server starts."""
