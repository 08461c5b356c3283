"""Pure core: the domain's types and decisions every layer shares. No I/O."""
