"""`sovkit rehearse STACK`: a dress rehearsal of a site on this machine (its hosts and in-country services)."""
