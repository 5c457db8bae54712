"""Routers: how the edge's traffic reaches a service's tracks, one file per way of splitting
it, chosen by name through `factory.ROUTERS`."""
