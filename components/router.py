"""The Router interface: how the edge's traffic reaches a release plan's tracks.

One implementation per way of splitting traffic (the model: Flagger's router
package, one implementation per mesh or load balancer):

- `TargetGroupRouter`: at the ALB, a target group per track (rolling, blue/green);
- `CanaryRouter`: in the Istio mesh, subsets of one host (canary; rolling with the mesh).

The program drives either the same way: create the router, create each track with
`deployment_after(track)`, then `route_production(after=<the Deployments with
production traffic>)`, the remaining tracks, and `route_test(after=<theirs>)`.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import pulumi


class Router(Protocol):
    def deployment_after(self, track: str) -> list[pulumi.Resource]:
        """What a track's Deployment must wait for."""
        ...

    def route_production(self, after: Sequence[pulumi.Resource]) -> pulumi.Resource:
        """The production route, changed only after `after` are ready; returns it."""
        ...

    def route_test(self, after: Sequence[pulumi.Resource]) -> None:
        """The test route, if the strategy has one; ends the router's registration."""
        ...
