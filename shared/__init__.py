"""OuterPark's shared package: domain, use cases, ports, adapters and composition."""
