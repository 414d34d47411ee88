"""`aura demo`: the whole product on one machine, with no cloud account."""
