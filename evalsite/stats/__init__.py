"""Pure statistics over numpy arrays: no Django imports here, so every function is testable alone."""
