"""CLI commands, one module per area; `genred.cli` assembles them."""
