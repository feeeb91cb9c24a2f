"""Usage per tenant and model for chargeback: read from the gateways' access logs, where each answered request
carries the tokens its model server counted (`sovkit usage STACK`)."""
