"""Model providers behind one protocol, and the resilience composed around them."""
