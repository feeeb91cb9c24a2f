"""OSCAL documents of the kit, built and validated with compliance-trestle.

Catalogues (the kit's controls; each country profile's clauses), a component definition (how the kit implements
them) and, for each `sovkit verify` run, assessment results (observations per check, findings per clause).
"""
