"""The local provider: a whole site on this machine (`sovkit up --stack local`, `sovkit down --stack local`)."""
